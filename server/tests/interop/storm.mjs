// A broadcast storm across the polling → WebSocket upgrade. Usage: node storm.mjs <url> <count> <how>
//
// p (WebSocket) publishes messages 0..count-1 to room "storm", one after another (each waits for its
// ack, with a 1 ms pause every 4, so the storm lasts a few hundred ms). Meanwhile a fresh client c with
// the default transports (polling, then WebSocket) connects and joins "storm". c must receive every
// message published after its join ack came back, exactly once and in order, whatever transport it was
// on at the time. `how`:
// - `natural`: c joins as soon as it connects and upgrades whenever socket.io-client does (often while
//   its join is in flight, so the join rides right behind the `5` packet);
// - `midstorm`: c starts with upgrades off, joins over polling, and starts the upgrade itself once it has
//   received 20 storm messages, so the switch surely happens mid-storm with nothing queued behind `5`.
//   It calls engine.io-client's internal `_probe` (the same call the client makes on open), pinned by
//   package-lock.json.
// Prints {"received":[…],"issued_at_join":k,"sent_at_probe":s,"sent_at_upgrade":u,"transport":…}:
// k counts the publishes p had emitted when c's join ack came back (every later one must reach c);
// s and u count those p had seen acked when the upgrade started and when it completed.
import { args, ask, client, connected, main, out, sleep } from "./lib.mjs";

const count = Number(args[0] ?? 500);
const how = args[1] ?? "midstorm";
const PROBE_AFTER = 20;

main(async () => {
  const p = client("websocket");
  p.on("disconnect", (reason) => console.error(`publisher disconnected: ${reason}`));
  await connected(p, "publisher connect");
  let issued = 0;
  let sent = 0;
  const storm = (async () => {
    for (let i = 0; i < count; i++) {
      issued = i + 1;
      const ack = await ask(p, "publish", { to: ["storm"], event: "seq", data: i });
      if (ack !== "ok") throw new Error(`publish ${i} acked ${JSON.stringify(ack)}`);
      sent = i + 1;
      if (i % 4 === 3) await sleep(1);
    }
  })();
  // Let the storm start before c exists, so c's handshake and join happen inside it.
  while (sent < 5) await sleep(1);
  const c = client("default", { upgrade: how !== "midstorm" });
  const marks = { issued_at_join: -1, sent_at_probe: -1, sent_at_upgrade: -1 };
  const received = [];
  c.on("seq", (n) => {
    received.push(n);
    if (how === "midstorm" && received.length === PROBE_AFTER) {
      if (typeof c.io.engine._probe !== "function") throw new Error("engine.io-client has no _probe");
      marks.sent_at_probe = sent;
      c.io.engine._probe("websocket");
    }
  });
  c.on("disconnect", (reason, details) =>
    console.error(`storm client disconnected: ${reason} (close code ${details?.context?.code ?? "none"})`),
  );
  c.io.on("open", () => c.io.engine.on("upgrade", () => (marks.sent_at_upgrade = sent)));
  await connected(c, "storm client connect");
  if ((await ask(c, "join", "storm")) !== "ok") throw new Error("join refused");
  marks.issued_at_join = issued;
  await storm;
  // p saw its last publish acked; give c's copy a bounded time to arrive.
  for (let waited = 0; received.at(-1) !== count - 1 && waited < 5000; waited += 10) await sleep(10);
  out({ received, ...marks, transport: c.io.engine.transport.name });
  p.close();
  c.close();
});
