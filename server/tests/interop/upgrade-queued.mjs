// Packets the client queued during the upgrade, sent right behind its `5` (upgrade) packet.
// Usage: node upgrade-queued.mjs <url> <rounds>
//
// While polling is paused for the upgrade, socket.io-client holds new packets and flushes them on the
// WebSocket right after `5`, so they often reach the server in the same read as `5`. This script makes
// that certain: on `upgrading` it corks the probe WebSocket's TCP socket, emits three joins, and uncorks
// once `5` and the held packets are written. Prints {"rounds":[{"acks":…,"closed":…}, …]}: every round
// must end with its acks ["ok","ok","ok"] and no disconnect.
import { args, client, connected, main, out, PATIENCE_MS } from "./lib.mjs";

const rounds = Number(args[0] ?? 3);

main(async () => {
  const results = [];
  for (let i = 0; i < rounds; i++) {
    const c = client("default");
    let closed = null;
    c.on("disconnect", (reason, details) => (closed = { reason, code: details?.context?.code ?? null }));
    const acks = new Promise((resolve) => {
      c.io.on("open", () =>
        c.io.engine.once("upgrading", (transport) => {
          const tcp = transport.ws?._socket;
          if (!tcp) throw new Error("no TCP socket under the probe WebSocket (engine.io-client changed?)");
          tcp.cork();
          c.io.engine.once("upgrade", () => setImmediate(() => tcp.uncork()));
          const joins = [0, 1, 2].map((k) =>
            c.timeout(PATIENCE_MS).emitWithAck("join", `queued-${k}`).catch((e) => e.message),
          );
          resolve(Promise.all(joins));
        }),
      );
    });
    await connected(c);
    results.push({ acks: await acks, closed, transport: c.io.engine?.transport?.name ?? null });
    c.close();
  }
  out({ rounds: results });
});
