"""python-socketio against roomcast. Usage: python python_client.py <url> [rooms|binary|reconnect]

- rooms (push app): two clients over WebSocket: b joins room "py" (ack), a publishes to it (ack), b
  receives the event. Prints {"join_ack":…,"publish_ack":…,"got":…,"sids_differ":…}.
- binary (echo server): `message-with-ack` with bytes is acked with the same bytes, and `message` with
  bytes comes back as `message-back`. Prints {"ack":[…],"back":[…]} with bytes as hex.
- reconnect (push app): prints {"phase":"ready"} once connected and joined; the harness restarts the
  server; the client reconnects by itself, joins again, publishes to itself through a second client and
  prints {"phase":"reconnected","got":…,"attempts":n}.
Exits 1 on any failure.
"""

import json
import queue
import sys

import socketio

PATIENCE_S = 10


def hexed(values):
    return [v.hex() if isinstance(v, (bytes, bytearray)) else v for v in values]


def binary(url: str) -> None:
    c = socketio.Client(reconnection=False)
    back: "queue.Queue[object]" = queue.Queue()
    c.on("message-back", lambda *args: back.put(list(args)))
    try:
        c.connect(url, transports=["websocket"], wait_timeout=PATIENCE_S)
        ack = c.call("message-with-ack", (b"\x01\x02\x03", "x"), timeout=PATIENCE_S)
        c.emit("message", (b"\x04\x05", {"k": 1}))
        got = back.get(timeout=PATIENCE_S)
        ack = list(ack) if isinstance(ack, (list, tuple)) else [ack]
        print(json.dumps({"ack": hexed(ack), "back": hexed(got)}), flush=True)
    finally:
        c.disconnect()


def reconnect(url: str) -> None:
    attempts = {"n": 0}
    connects: "queue.Queue[object]" = queue.Queue()
    news: "queue.Queue[object]" = queue.Queue()
    b = socketio.Client(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.3)
    b.on("connect", lambda: connects.put(True))
    b.on("news", news.put)

    @b.on("disconnect")
    def _gone(*_args):
        attempts["n"] += 1

    b.connect(url, transports=["websocket"], wait_timeout=PATIENCE_S)
    connects.get(timeout=PATIENCE_S)
    if b.call("join", "py", timeout=PATIENCE_S) != "ok":
        raise RuntimeError("join refused")
    print(json.dumps({"phase": "ready"}), flush=True)
    # The harness restarts the server: python-socketio reconnects by itself.
    connects.get(timeout=30)
    if b.call("join", "py", timeout=PATIENCE_S) != "ok":
        raise RuntimeError("join after the restart refused")
    a = socketio.Client(reconnection=False)
    a.connect(url, transports=["websocket"], wait_timeout=PATIENCE_S)
    a.call("publish", {"to": ["py"], "event": "news", "data": "after restart"}, timeout=PATIENCE_S)
    got = news.get(timeout=PATIENCE_S)
    print(json.dumps({"phase": "reconnected", "got": got, "drops": attempts["n"]}), flush=True)
    a.disconnect()
    b.disconnect()


def main() -> None:
    url = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "rooms"
    if mode == "binary":
        return binary(url)
    if mode == "reconnect":
        return reconnect(url)
    a = socketio.Client(reconnection=False)
    b = socketio.Client(reconnection=False)
    got: "queue.Queue[object]" = queue.Queue()
    b.on("news", got.put)
    try:
        a.connect(url, transports=["websocket"], wait_timeout=PATIENCE_S)
        b.connect(url, transports=["websocket"], wait_timeout=PATIENCE_S)
        join_ack = b.call("join", "py", timeout=PATIENCE_S)
        request = {"to": ["py"], "event": "news", "data": {"from": "python", "n": [1, 2.5, None]}}
        publish_ack = a.call("publish", request, timeout=PATIENCE_S)
        received = got.get(timeout=PATIENCE_S)
        print(
            json.dumps(
                {
                    "join_ack": join_ack,
                    "publish_ack": publish_ack,
                    "got": received,
                    "sids_differ": a.get_sid() != b.get_sid(),
                }
            ),
            flush=True,
        )
    finally:
        a.disconnect()
        b.disconnect()


if __name__ == "__main__":
    main()
