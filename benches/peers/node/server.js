// The Node.js reference peer: socket.io 4.8 running the same app as Roomcast's built-in one
// (server/src/app.rs), so the load generator and the benchmarks can drive both the same way.
//
// On namespace "/", a client may emit:
//   join (room)    -> socket.join(room);  ack "ok"
//   leave (room)   -> socket.leave(room); ack "ok"
//   publish ({"to":[rooms],"except":[rooms],"event":name,"data":any})
//                  -> socket.to(to...).except(except...).emit(event, data): the sender excluded,
//                     each recipient once; with no "to", every socket of the namespace but the sender.
//                     ack "ok"
// A refused request is acked with {"error": "..."}. "to"/"except" may be one room name or a list.
//
// Usage: node server.js [port]   (or PORT=3001 node server.js); port 0 picks a free port.
// Prints "node-peer: listening on <host>:<port>" once ready. HOST (default 127.0.0.1) sets the address.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] ?? process.env.PORT ?? 3001);
const host = process.env.HOST ?? "127.0.0.1";

const httpServer = http.createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  serveClient: false,
  // Defaults otherwise: pingInterval 25000, pingTimeout 20000, maxHttpBufferSize 1e6, no compression.
});

function rooms(value) {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.every((r) => typeof r === "string")) return value;
  return null;
}

function reply(ack, value) {
  if (typeof ack === "function") ack(value);
}

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    if (typeof room !== "string" || room === "") return reply(ack, { error: "expected a room name" });
    socket.join(room);
    reply(ack, "ok");
  });

  socket.on("leave", (room, ack) => {
    if (typeof room !== "string" || room === "") return reply(ack, { error: "expected a room name" });
    socket.leave(room);
    reply(ack, "ok");
  });

  socket.on("publish", (request, ack) => {
    const to = rooms(request?.to);
    const except = rooms(request?.except);
    if (!request || typeof request.event !== "string" || to === null || except === null) {
      return reply(ack, { error: 'expected {"to":[…],"except":[…],"event":…,"data":…}' });
    }
    let operator = socket.broadcast;
    if (to.length > 0) operator = operator.to(to);
    if (except.length > 0) operator = operator.except(except);
    if ("data" in request) operator.emit(request.event, request.data);
    else operator.emit(request.event);
    reply(ack, "ok");
  });
});

httpServer.listen(port, host, () => {
  const address = httpServer.address();
  console.log(`node-peer: listening on ${address.address}:${address.port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
