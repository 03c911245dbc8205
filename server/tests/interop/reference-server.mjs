// The reference: socket.io 4.8 running the same push app as `roomcast` (join, leave, publish) plus the
// conformance echo (`message` → `message-back`, `message-with-ack` acked with its arguments), so every
// script can be run against it to check the script itself and to compare outputs.
// Usage: node reference-server.mjs [port]. Prints {"listening":<port>} once it accepts.
import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer();
const io = new Server(http, { pingInterval: 25_000, pingTimeout: 20_000 });
const rooms = (r) => (r === undefined ? [] : Array.isArray(r) ? r : [r]);
const refuse = (ack, error) => typeof ack === "function" && ack({ error });

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    if (typeof room !== "string" || room === "") return refuse(ack, "expected a room name");
    socket.join(room);
    if (typeof ack === "function") ack("ok");
  });
  socket.on("leave", (room, ack) => {
    if (typeof room !== "string" || room === "") return refuse(ack, "expected a room name");
    socket.leave(room);
    if (typeof ack === "function") ack("ok");
  });
  socket.on("publish", (request, ack) => {
    if (request === null || typeof request !== "object" || typeof request.event !== "string") {
      return refuse(ack, "expected {\"to\":[…],\"except\":[…],\"event\":…,\"data\":…}");
    }
    let op = socket.broadcast;
    for (const room of rooms(request.to)) op = op.to(room);
    for (const room of rooms(request.except)) op = op.except(room);
    if ("data" in request) op.emit(request.event, request.data);
    else op.emit(request.event);
    if (typeof ack === "function") ack("ok");
  });
  socket.on("message", (...values) => socket.emit("message-back", ...values));
  socket.on("message-with-ack", (...values) => {
    const ack = values.pop();
    ack(...values);
  });
});

http.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: http.address().port }));
});
