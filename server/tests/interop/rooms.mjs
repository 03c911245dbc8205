// Rooms through the built-in push app: union of `to`, `except`, sender exclusion, the socket's own room,
// broadcast to all, and leave. Usage: node rooms.mjs <url> <websocket|polling|default> [upgrade-first]
//
// With `default`, clients start joining as soon as they connect, so their upgrades run meanwhile;
// `upgrade-first` makes each wait for its upgrade (and 100 ms more) before it sends anything.
//
// Members: a{r1}, b{r1,r2}, c{r2,r3}, d{r3}, p{r1} (p publishes). After each step p broadcasts a `done`
// sentinel to everyone; a client's `done` for step k arrives after every `news` of step k from p (one
// sender's packets keep their order), so the counts are final without sleeping.
// Prints: {"ids":{…},"transports":{…}} then one {"step":…,"recipients":[…]} per step (names sorted,
// repeated if a client got the message more than once), then {"final_transports":{…}}.
import { args, ask, client, connected, finalTransport, main, once, out, sleep } from "./lib.mjs";

const mode = args[0] ?? "websocket";
const upgradeFirst = args[1] === "upgrade-first";
const names = ["a", "b", "c", "d", "p"];
const membership = { a: ["r1"], b: ["r1", "r2"], c: ["r2", "r3"], d: ["r3"], p: ["r1"] };

main(async () => {
  const sockets = Object.fromEntries(names.map((n) => [n, client(mode)]));
  const news = [];
  for (const n of names) sockets[n].on("news", (data) => news.push({ to: n, step: data.step }));
  await Promise.all(names.map((n) => connected(sockets[n], `${n} connect`)));
  if (upgradeFirst) {
    await Promise.all(names.map((n) => finalTransport(sockets[n], mode)));
    // `upgrade` fires as the client writes `5`; a packet written right after it can share the server's
    // read with `5`, which roomcast mishandles (see upgrade-queued.mjs). Let `5` be read alone first.
    await sleep(100);
  }
  out({
    ids: Object.fromEntries(names.map((n) => [n, sockets[n].id])),
    transports: Object.fromEntries(names.map((n) => [n, sockets[n].io.engine.transport.name])),
  });
  for (const n of names) for (const room of membership[n]) {
    const ack = await ask(sockets[n], "join", room);
    if (ack !== "ok") throw new Error(`join ${room} acked ${JSON.stringify(ack)}`);
  }
  const p = sockets.p;
  const step = async (name, request) => {
    const ack = await ask(p, "publish", { ...request, event: "news", data: { step: name } });
    if (ack !== "ok") throw new Error(`publish ${name} acked ${JSON.stringify(ack)}`);
    const others = names.filter((n) => n !== "p");
    const done = others.map((n) => once(sockets[n], "done", `${n}'s done after ${name}`));
    await ask(p, "publish", { event: "done", data: name });
    const seen = await Promise.all(done);
    if (seen.some((s) => s !== name)) throw new Error(`done sentinels out of order: ${seen}`);
    const recipients = news.filter((m) => m.step === name).map((m) => m.to).sort();
    out({ step: name, recipients });
  };
  await step("union", { to: ["r1", "r2"] });
  await step("except", { to: ["r1", "r2"], except: ["r3"] });
  await step("everyone", {});
  await step("own_room", { to: [sockets.c.id] });
  await step("one_room_as_string", { to: "r3" });
  const left = await ask(sockets.b, "leave", "r1");
  if (left !== "ok") throw new Error(`leave acked ${JSON.stringify(left)}`);
  await step("after_leave", { to: ["r1"] });
  const final = {};
  for (const n of names) final[n] = await finalTransport(sockets[n], mode);
  out({ final_transports: final });
  for (const n of names) sockets[n].close();
});
