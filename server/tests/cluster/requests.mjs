// The Node.js side of the Roomcast → Node requests test (server/tests/redis_mixed_requests.rs): a
// socket.io 4.8 server with @socket.io/redis-adapter 8.x on the given Redis, with two clients of its
// own, `node_r` (in room `r`) and `node`, both answering `question` acks with `<name>:<n + 1>`.
// Its `/` answers server-side `ask` (n → 2n) and answers a server-side `ping` n with a server-side
// `pong` n + 1. It prints one JSON fact per line: `{"ready": …}` once Redis counts two servers, then
// `{"client", "event", "args"}` for every event its clients receive and `{"client", "disconnect"}`.
// With `sharded`, the server uses the sharded adapter (`createShardedAdapter`, dynamic mode) instead.
// Runs until its stdin closes (or 40 s).
// Usage: node requests.mjs <redis url> [sharded]
import { createServer } from "node:http";
import { Server } from "socket.io";
import { io as connect } from "socket.io-client";
import { createClient } from "redis";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";

const [redisUrl, protocol] = process.argv.slice(2);
const fact = (f) => console.log(JSON.stringify(f));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
setTimeout(() => {
  fact({ error: "scenario timed out" });
  process.exit(2);
}, 40000).unref();

const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
const adapter =
  protocol === "sharded"
    ? createShardedAdapter(pub, sub, { subscriptionMode: "dynamic" })
    : createAdapter(pub, sub, { requestsTimeout: 3000 });
const io = new Server(http, { adapter });
io.on("connection", (socket) => {
  socket.join(socket.handshake.auth.rooms ?? []);
});
io.of("/").on("ask", (n, cb) => cb(n * 2));
io.of("/").on("ping", (n) => io.serverSideEmit("pong", n + 1));
await new Promise((r) => http.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${http.address().port}`;

async function client(name, rooms) {
  const socket = connect(url, { transports: ["websocket"], auth: { rooms } });
  socket.onAny((event, ...args) => {
    const plain = args.filter((a) => typeof a !== "function");
    fact({ client: name, event, args: plain });
  });
  socket.on("question", (n, ack) => ack(`${name}:${n + 1}`));
  socket.on("disconnect", (reason) => fact({ client: name, disconnect: reason }));
  await new Promise((r, j) => {
    socket.on("connect", r);
    socket.on("connect_error", j);
  });
  return socket;
}
const nodeR = await client("node_r", ["r"]);
const node = await client("node", []);

let serverCount = 0;
for (let i = 0; i < 200 && serverCount !== 2; i++) {
  serverCount = await io.of("/").adapter.serverCount();
  if (serverCount !== 2) await sleep(50);
}
fact({ ready: true, serverCount, node_r: nodeR.id, node: node.id });

process.stdin.on("data", () => {});
process.stdin.on("end", async () => {
  nodeR.disconnect();
  node.disconnect();
  io.close();
  await Promise.all([pub.quit(), sub.quit()].map((p) => p.catch(() => {})));
  process.exit(0);
});
