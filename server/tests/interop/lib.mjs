// Shared helpers of the interop scripts. Every script takes the server URL first, prints one JSON object
// per stdout line (the facts server/tests/interop.rs asserts on) and exits 0, or prints the failure to
// stderr and exits 1. Every wait is bounded, so a silent server fails a script instead of hanging it.
import { io } from "socket.io-client";

export const url = process.argv[2];
export const args = process.argv.slice(3);

/** Upper bound for one awaited event; the harness kills the whole script after 30 s anyway. */
export const PATIENCE_MS = 10_000;

/** `websocket`, `polling`, or `default` (polling first, then the upgrade to WebSocket). */
export function transportsOf(mode) {
  return mode === "default" ? ["polling", "websocket"] : [mode];
}

/** A fresh client (own Manager, so its own Engine.IO session) with reconnection off unless asked. */
export function client(mode, options = {}) {
  return io(url, { transports: transportsOf(mode), reconnection: false, forceNew: true, ...options });
}

/** Resolves with the first `event` on `emitter`, rejects after `ms` naming `what`. */
export function once(emitter, event, what, ms = PATIENCE_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    emitter.once(event, (...values) => {
      clearTimeout(timer);
      resolve(values.length > 1 ? values : values[0]);
    });
  });
}

/** Resolves once `socket` is connected; rejects on `connect_error`. */
export function connected(socket, what = "connect") {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), PATIENCE_MS);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (e) => { clearTimeout(timer); reject(new Error(`${what}: ${e.message}`)); });
  });
}

/** `emitWithAck` bounded by PATIENCE_MS. */
export function ask(socket, event, ...values) {
  return socket.timeout(PATIENCE_MS).emitWithAck(event, ...values);
}

/** The transport a client ends up on, after waiting (bounded) for a pending upgrade. */
export async function finalTransport(socket, mode) {
  const engine = socket.io.engine;
  if (mode === "default" && engine.transport.name !== "websocket") await once(engine, "upgrade", "upgrade");
  return engine.transport.name;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Prints one fact line. */
export function out(fact) {
  console.log(JSON.stringify(fact));
}

/** Runs the script body; exit 0 on success, 1 with the error on stderr otherwise. */
export function main(body) {
  body().then(
    () => process.exit(0),
    (e) => {
      console.error(e?.stack ?? String(e));
      process.exit(1);
    },
  );
}
