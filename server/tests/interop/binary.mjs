// Binary attachments both ways, against a server that echoes `message` as `message-back` and acks
// `message-with-ack` with its arguments (the conformance echo). Usage: node binary.mjs <url> <mode>
// Prints one {"case":…,"args":[…]} line per case; Buffers are printed as {"hex":…}.
import { args, client, connected, main, once, out, PATIENCE_MS } from "./lib.mjs";

const mode = args[0] ?? "websocket";
const only = args.slice(1);
const wanted = (name) => only.length === 0 || only.includes(name);
const show = (v) =>
  Buffer.isBuffer(v) || v instanceof ArrayBuffer
    ? { hex: Buffer.from(v).toString("hex") }
    : Array.isArray(v)
      ? v.map(show)
      : v !== null && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, show(x)]))
        : v;

main(async () => {
  const s = client(mode);
  await connected(s);
  const echo = async (name, ...values) => {
    if (!wanted(name)) return;
    const back = once(s, "message-back", `${name} echo`);
    s.emit("message", ...values);
    const got = await back;
    out({ case: name, args: show(Array.isArray(got) ? got : [got]) });
  };
  await echo("one_buffer", Buffer.from([0, 1, 2, 0xfd, 0xfe, 0xff]));
  await echo("mixed", "text", Buffer.from("bin"), { n: 1 }, Buffer.alloc(0));
  await echo("nested", { file: Buffer.from([7, 8]), list: [Buffer.from([9])] });
  if (!wanted("big_ack")) return s.close();
  const big = Buffer.alloc(200_000, 0xab);
  const acked = await new Promise((resolve, reject) =>
    s.timeout(PATIENCE_MS).emit("message-with-ack", big, 42, (err, ...values) => (err ? reject(err) : resolve(values))),
  );
  const [first, second] = acked;
  out({ case: "big_ack", args: [{ len: first.length, same: Buffer.from(first).equals(big) }, second] });
  s.close();
});
