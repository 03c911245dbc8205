"""python-socketio against the push app. Usage: python python_client.py <url>

Two clients over WebSocket: b joins room "py" (ack), a publishes to it (ack), b receives the event.
Prints one JSON line: {"join_ack":…,"publish_ack":…,"got":…,"sids_differ":…}; exits 1 on any failure.
"""

import json
import queue
import sys

import socketio

PATIENCE_S = 10


def main() -> None:
    url = sys.argv[1]
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
