// JSON passes through byte for byte. Usage: node json-exact.mjs <url> <mode> <json text>
//
// JS cannot send `2.50` (JSON.stringify writes `2.5`), so `a` writes the Socket.IO packet text itself on
// its Engine.IO connection; `b` records the raw text of the Engine.IO message that carries the event.
// Roomcast forwards the argument's text untouched; the reference server parses and re-serializes it.
// `a` publishes <json text> as the event's data to room "exact", which b joined.
// Prints {"raw":<the message text b received>,"parsed":<the argument as socket.io-client decoded it>}.
import { args, ask, client, connected, main, once, out } from "./lib.mjs";

const mode = args[0] ?? "websocket";
const data = args[1];

main(async () => {
  const a = client(mode);
  const b = client(mode);
  await Promise.all([connected(a, "a connect"), connected(b, "b connect")]);
  if ((await ask(b, "join", "exact")) !== "ok") throw new Error("join refused");
  const raws = [];
  b.io.engine.on("packet", (packet) => {
    if (packet.type === "message" && String(packet.data).startsWith('2["exact"')) raws.push(packet.data);
  });
  const event = once(b, "exact", "the exact event");
  a.io.engine.write(`2["publish",{"to":"exact","event":"exact","data":${data}}]`);
  const parsed = await event;
  out({ raw: raws.join("|"), parsed });
  a.close();
  b.close();
});
