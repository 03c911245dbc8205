// The mixed cluster of mixed.mjs with the sharded adapter: a socket.io 4.8 server with
// `createShardedAdapter` from @socket.io/redis-adapter 8.x (subscriptionMode "dynamic", the default)
// and a Roomcast node started with --redis-sharded (by server/tests/redis_mixed_sharded.rs, running the
// lab handlers `join`, `op`, `bin`), one Redis 7. Clients on both servers record what they receive;
// every step ends with a `fence` broadcast to the whole cluster and prints one JSON fact line:
//   {"step": "...", "got": {"rc_r": [...], "rc": [...], "node_r": [...], "node": [...]}, ...}
// Usage: node sharded.mjs <roomcast url> <redis url>
import { createServer } from "node:http";
import { Server } from "socket.io";
import { io as connect } from "socket.io-client";
import { createClient } from "redis";
import { createShardedAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";

const [roomcastUrl, redisUrl] = process.argv.slice(2);
const fact = (f) => console.log(JSON.stringify(f));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
setTimeout(() => {
  fact({ error: "scenario timed out" });
  process.exit(2);
}, 25000).unref();

const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
const emitterClient = pub.duplicate();
await Promise.all([pub.connect(), sub.connect(), emitterClient.connect()]);

const http = createServer();
const io = new Server(http, { adapter: createShardedAdapter(pub, sub) });
io.of("/admin");
io.on("connection", (socket) => {
  socket.join(socket.handshake.auth.rooms ?? []);
});
await new Promise((r) => http.listen(0, "127.0.0.1", r));
const nodeUrl = `http://127.0.0.1:${http.address().port}`;

// Node counts the Roomcast node (PUBSUB SHARDNUMSUB of the namespace's main channel).
let serverCount = 0;
for (let i = 0; i < 100 && serverCount !== 2; i++) {
  serverCount = await io.of("/").adapter.serverCount();
  if (serverCount !== 2) await sleep(50);
}
fact({ step: "serverCount", serverCount });

/** A client that records events (name plus args, buffers as arrays of bytes) between fences. */
async function client(name, url, rooms, nsp = "/") {
  const socket = connect(url + nsp, { transports: ["websocket"], auth: { rooms } });
  const state = { name, socket, seen: [], fences: [] };
  socket.onAny((event, ...args) => {
    if (event === "fence") {
      const waiter = state.fences.shift();
      const seen = state.seen;
      state.seen = [];
      if (waiter) waiter(seen);
      return;
    }
    const plain = args.filter((a) => typeof a !== "function").map((a) =>
      Buffer.isBuffer(a) ? { buffer: [...a] } : a);
    state.seen.push([event, ...plain]);
  });
  socket.on("question", (n, ack) => ack(`${name}:${n + 1}`));
  await new Promise((r, j) => {
    socket.on("connect", r);
    socket.on("connect_error", j);
  });
  if (url === roomcastUrl && rooms.length) await socket.emitWithAck("join", ...rooms);
  return state;
}

const clients = {
  rc_r: await client("rc_r", roomcastUrl, ["r"]),
  rc: await client("rc", roomcastUrl, []),
  node_r: await client("node_r", nodeUrl, ["r"]),
  node: await client("node", nodeUrl, []),
};
const admin = await client("rc_admin", roomcastUrl, [], "/admin");

// Both servers follow room r on its own channel before anything is sent there.
const roomSubscribers = async (room) =>
  Number((await pub.sendCommand(["PUBSUB", "SHARDNUMSUB", `socket.io#/#${room}#`]))[1]);
for (let i = 0; i < 100 && (await roomSubscribers("r")) !== 2; i++) await sleep(20);
fact({ step: "room channel", subscribers: await roomSubscribers("r") });

/** Runs `act`, then fences `/` (from Node unless told) and reports what each client saw. */
async function step(name, act, extra = {}) {
  const waits = Object.values(clients).map((c) => new Promise((r) => c.fences.push(r)));
  const result = await act();
  if (!extra.fencedByAct) io.emit("fence");
  const seen = await Promise.all(waits);
  const got = Object.fromEntries(Object.keys(clients).map((k, i) => [k, seen[i]]));
  fact({ step: name, got, ...(result === undefined ? {} : { result }) });
}

const nodeSocket = (c) => io.of("/").sockets.get(c.socket.id);
const op = (c, spec) => c.socket.emitWithAck("op", spec);

// Node → Roomcast.
await step("node io.to(r)", () => { io.to("r").emit("hit", "n1"); });
await step("node io.except(r)", () => { io.except("r").emit("hit", "n2"); });
await step("node socket.broadcast", () => { nodeSocket(clients.node_r).broadcast.emit("hit", "n3"); });
await step("node socket.to(r)", () => { nodeSocket(clients.node_r).to("r").emit("hit", "n4"); });
await step("node binary", () => { io.emit("bin", Buffer.from([1, 2, 3]), { n: 1 }); });
// Roomcast → Node (the Roomcast lab emits `hit` with the sender's id, then fences the cluster).
await step("roomcast io.to(r)", () => op(clients.rc, { via: "io", to: ["r"], except: [] }), { fencedByAct: true });
await step("roomcast socket.broadcast", () => op(clients.rc_r, { via: "socket", to: [], except: [] }), { fencedByAct: true });
await step("roomcast io.except(r)", () => op(clients.rc, { via: "io", to: [], except: ["r"] }), { fencedByAct: true });
await step("roomcast binary", () => clients.rc.socket.emitWithAck("bin"), { fencedByAct: true });

// Requests from Node to the Roomcast node.
await step("fetchSockets", async () => {
  const sockets = await io.in("r").fetchSockets();
  return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), hasHandshake: typeof s.handshake?.headers === "object" }))
    .sort((a, b) => a.id.localeCompare(b.id));
});
await step("socketsJoin then io.to(j)", async () => {
  io.in(clients.rc.socket.id).socketsJoin("j");
  for (let i = 0; i < 100 && (await roomSubscribers("j")) !== 1; i++) await sleep(20);
  io.to("j").emit("hit", "joined");
});
await step("socketsLeave then io.to(j)", async () => {
  io.in(clients.rc.socket.id).socketsLeave("j");
  await sleep(200);
  io.to("j").emit("hit", "left");
});
await step("broadcast with ack", async () => (await io.timeout(2000).emitWithAck("question", 1)).sort());
await step("serverSideEmit", async () => {
  io.serverSideEmit("ping", 7);
  await sleep(200);
});
await step("serverSideEmitWithAck", async () => await io.serverSideEmitWithAck("ask", 2));

// The emitter publishes the classic format with PUBLISH: no sharded server hears it, Node's or Roomcast.
const emitter = new Emitter(emitterClient);
await step("emitter io.emit", async () => {
  emitter.emit("hit", "e1");
  await sleep(200);
});

// Last: disconnectSockets from Node reaches the Roomcast client.
const gone = new Promise((r) => clients.rc.socket.once("disconnect", (reason) => r(reason)));
io.in(clients.rc.socket.id).disconnectSockets();
fact({ step: "disconnectSockets", reason: await Promise.race([gone, sleep(3000).then(() => "still connected")]) });

for (const c of [...Object.values(clients), admin]) c.socket.disconnect();
io.close();
await Promise.all([pub.quit(), sub.quit(), emitterClient.quit()].map((p) => p.catch(() => {})));
process.exit(0);
