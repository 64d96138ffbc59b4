"""Wait, without polling, until the path to a server is usable: a netlink socket subscribed to the
link, address and route groups, blocking in select() with the time left. What to send and when, and
whether the path is usable, is decided by readiness.Conversation (pure, unit-tested on recordings)."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable

from pylive.log import log
from pylive.net.errors import NotReady
from pylive.net.readiness import GROUPS, Conversation, Ready

RCVBUF = 1 << 20


def wait_ready(server: str, timeout_s: float, interface: str | None = None, *,
               clock: Callable[[], float] = time.monotonic, record: Callable[[bytes], None] | None = None) -> Ready:
    """When the kernel has a route to `server` (an address, or a name resolved once an interface has
    an address) through a link that is up, has carrier and an address: Ready. NotReady (one line:
    the interface, what is missing, what to do) after `timeout_s`. `record` sees each datagram read
    (the unit tests' fixtures were recorded with it)."""
    deadline = clock() + timeout_s
    talk = Conversation(literal_address(server), interface)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind((0, GROUPS))  # subscribed before the dumps: no change falls between the two
        requests = talk.start()
        while True:
            for request in requests:
                sock.send(request)
            if talk.needs_name:
                address = resolve(server)  # an interface has an address: DNS may answer now
                if address is not None:
                    requests = talk.set_server(address)
                    continue
            ready = talk.state.ready()
            if ready is not None:
                log.info("network ready for %s: %s%s", server, ready.interface,
                         f" via {ready.gateway}" if ready.gateway else "")
                return ready
            left = deadline - clock()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                name, missing, hint = talk.state.missing()
                if talk.server is None and missing.startswith("no route"):
                    missing = f"cannot resolve {server}"
                    hint = "check the DNS server given by ip= or nameserver=, or name the server by its address"
                raise NotReady(name, missing, timeout_s, hint)
            data = sock.recv(65536)
            if record is not None:
                record(data)
            requests = talk.received(data)


def literal_address(server: str) -> str | None:
    """`server` if it is an IPv4 or IPv6 address, else None (a name)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, server)
            return server
        except OSError:
            continue
    return None


def resolve(server: str) -> str | None:
    try:
        infos = socket.getaddrinfo(server, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        log.debug("%s: not resolved yet (%s)", server, e)
        return None
    return str(infos[0][4][0]) if infos else None
