"""Run inside a network namespace (ip netns exec …): wait_ready(server, timeout[, interface]) and print,
as JSON lines, "subscribed" once the first netlink answer came, then the result (or the error line),
the seconds it waited, and the datagrams read (hex: the unit tests' fixtures)."""

from __future__ import annotations

import json
import sys
import time

from pylive.net.errors import NotReady
from pylive.net.ready import wait_ready


def main() -> None:
    server, timeout = sys.argv[1], float(sys.argv[2])
    interface = sys.argv[3] if len(sys.argv) > 3 else None
    recorded: list[str] = []
    times: list[float] = []

    def record(data: bytes) -> None:
        if not recorded:
            print(json.dumps({"subscribed": True}), flush=True)
        recorded.append(data.hex())
        times.append(time.monotonic())

    start = time.monotonic()
    try:
        ready = wait_ready(server, timeout, interface, record=record)
        result: dict[str, object] = {"ready": [ready.interface, ready.gateway, ready.source]}
    except NotReady as e:
        result = {"error": str(e)}
    end = time.monotonic()
    result.update(seconds=end - start, end=end, datagrams=recorded, times=times)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
