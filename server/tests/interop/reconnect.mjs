// Reconnection after a server restart. Usage: node reconnect.mjs <url> <mode>
//
// Talks with the harness through its stdout: prints {"phase":"ready",…} once a and b are connected and
// b is in room "r"; the harness then kills the server, and the script prints one
// {"phase":"disconnected",…} line per client. The harness starts a new server on the same port; both
// clients reconnect by themselves (`reconnect` on their Manager), b joins "r" again (rooms do not
// survive a restart), a publishes, and the script prints {"phase":"reconnected",…}.
import { args, ask, client, connected, main, once, out } from "./lib.mjs";

const mode = args[0] ?? "websocket";
const retry = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0 };

main(async () => {
  const a = client(mode, retry);
  const b = client(mode, retry);
  await Promise.all([connected(a, "a connect"), connected(b, "b connect")]);
  if ((await ask(b, "join", "r")) !== "ok") throw new Error("join refused");
  const before = { a: a.id, b: b.id };
  const attempts = { a: 0, b: 0 };
  a.io.on("reconnect_attempt", () => attempts.a++);
  b.io.on("reconnect_attempt", () => attempts.b++);
  const reconnected = [once(a.io, "reconnect", "a reconnect", 20_000), once(b.io, "reconnect", "b reconnect", 20_000)];
  const reasons = [once(a, "disconnect", "a disconnect", 20_000), once(b, "disconnect", "b disconnect", 20_000)];
  out({ phase: "ready" });
  // `disconnect` carries (reason, details); keep the reason.
  const [ra, rb] = (await Promise.all(reasons)).map((r) => (Array.isArray(r) ? r[0] : r));
  out({ phase: "disconnected", reasons: { a: ra, b: rb } });
  await Promise.all(reconnected);
  await Promise.all([connected(a, "a connect again"), connected(b, "b connect again")]);
  if ((await ask(b, "join", "r")) !== "ok") throw new Error("join after restart refused");
  const news = once(b, "news", "news after restart");
  if ((await ask(a, "publish", { to: ["r"], event: "news", data: "after restart" })) !== "ok") {
    throw new Error("publish after restart refused");
  }
  out({
    phase: "reconnected",
    got: await news,
    attempts,
    new_ids: a.id !== before.a && b.id !== before.b,
  });
  a.close();
  b.close();
});
