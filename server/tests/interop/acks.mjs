// Acknowledgements with the client's timeout API. Usage: node acks.mjs <url> <mode>
// Prints one {"case":…,"ack":…} line per case; a case that timed out prints {"case":…,"error":…}.
import { args, client, connected, main, out } from "./lib.mjs";

const mode = args[0] ?? "websocket";

main(async () => {
  const s = client(mode);
  await connected(s);
  const ack = async (name, event, ...values) => {
    try {
      out({ case: name, ack: await s.timeout(500).emitWithAck(event, ...values) });
    } catch (e) {
      out({ case: name, error: e.message });
    }
  };
  await ack("join", "join", "r");
  await ack("publish", "publish", { to: ["r"], event: "nobody-listens", data: [1, 2] });
  await ack("leave", "leave", "r");
  await ack("join_without_room", "join", "");
  await ack("publish_without_event", "publish", { to: ["r"] });
  await ack("unknown_event", "no-such-event", 1);
  // Many in flight at once: every ack must resolve its own promise.
  const many = await Promise.all(
    Array.from({ length: 50 }, (_, i) => s.timeout(2000).emitWithAck(i % 2 ? "join" : "leave", `m${i}`)),
  );
  out({ case: "fifty_in_flight", ack: many.filter((a) => a === "ok").length });
  s.close();
});
