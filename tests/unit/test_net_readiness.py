"""The readiness state machine (pylive/net/readiness.py) on rtnetlink datagrams recorded from a
network namespace on a real kernel (tests/privileged/test_net_ready.py, PYLIVE_RECORD_NETLINK=…):
link down, up without carrier, carrier, an address, then a route to the server."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

from pylive.net.readiness import (
    IFF_LOWER_UP,
    IFF_UP,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    AddrSeen,
    Conversation,
    LinkSeen,
    Readiness,
    Ready,
    RouteFound,
    RouteMissing,
    decode,
)

FIXTURES = Path(__file__).parent / "netlink"


def _replay(name: str) -> tuple[Conversation, list[tuple[str | None, str]], list[bytes]]:
    """The conversation after each recorded datagram: what was missing after each, and what it sent."""
    recording = json.loads((FIXTURES / name).read_text())
    talk = Conversation(recording["server"])
    sent = talk.start()
    missing: list[tuple[str | None, str]] = []
    for i, hexdata in enumerate(recording["datagrams"]):
        assert talk.state.ready() is None, f"ready before datagram {i}"
        sent += talk.received(bytes.fromhex(hexdata))
        step = talk.state.missing()[:2]
        if not missing or missing[-1] != step:
            missing.append(step)
    return talk, missing, sent


def test_recorded_bring_up() -> None:
    talk, missing, sent = _replay("route-added.json")
    assert talk.state.ready() == Ready("10.231.1.1", "eth0", "10.231.0.1", "10.231.0.2")
    assert missing[:4] == [("eth0", "down"), ("eth0", "no carrier"), ("eth0", "no address"),
                           (None, "no route to 10.231.1.1 (ENETUNREACH)")]
    kinds = [struct.unpack_from("=IHHI", r)[1:4:2] for r in sent]
    assert kinds[:3] == [(RTM_GETLINK, 1), (RTM_GETADDR, 2), (RTM_GETROUTE, 3)]
    assert all(kind == RTM_GETROUTE for kind, _ in kinds[2:]) and [s for _, s in kinds] == list(range(1, len(sent) + 1))
    assert sent[-1].endswith(socket.inet_aton("10.231.1.1"))


def test_recorded_bring_up_ipv6() -> None:
    """IPv6: the address is tentative (duplicate address detection) for a while after it is added."""
    talk, missing, _ = _replay("route-added-ipv6.json")
    assert talk.state.ready() == Ready("fd00:231:1::1", "eth0", "fd00:231::1", "fd00:231::2")
    # the route came while the address was still tentative: "no address" until it was not
    assert missing[:3] == [("eth0", "down"), ("eth0", "no carrier"), ("eth0", "no address")]
    recording = json.loads((FIXTURES / "route-added-ipv6.json").read_text())
    tentative = [e for d in recording["datagrams"] for e in decode(bytes.fromhex(d))
                 if isinstance(e, AddrSeen) and e.address == "fd00:231::2"]
    assert tentative[0].flags & 0x40 and not tentative[-1].flags & 0x40  # IFA_F_TENTATIVE, then not


def test_decode_recorded_messages() -> None:
    recording = json.loads((FIXTURES / "route-added.json").read_text())
    events = [e for d in recording["datagrams"] for e in decode(bytes.fromhex(d))]
    links = {e.name for e in events if isinstance(e, LinkSeen)}
    assert links == {"lo", "eth0"}
    assert AddrSeen(1, socket.AF_INET, "127.0.0.1", 0x80, 254) in events
    assert any(isinstance(e, RouteMissing) and e.error == 101 for e in events)  # ENETUNREACH
    assert any(isinstance(e, RouteFound) and e.gateway == "10.231.0.1" and e.prefsrc == "10.231.0.2" for e in events)


def _state(*events: object, server: str = "192.0.2.9", interface: str | None = None) -> Readiness:
    state = Readiness(server, interface)
    for event in events:
        state.feed(event)  # type: ignore[arg-type]
    return state


UP = IFF_UP | IFF_LOWER_UP


def test_what_is_missing_without_a_route() -> None:
    assert _state().missing()[1] == "no network interface"
    assert _state(LinkSeen(2, "eth0", UP), interface="eth1").missing()[:2] == ("eth1", "no such interface")
    assert _state(LinkSeen(2, "eth0", 0), LinkSeen(3, "eth1", IFF_UP)).missing()[:2] == ("eth1", "no carrier")
    assert _state(LinkSeen(2, "eth0", 0), LinkSeen(3, "eth1", 0)).missing()[:2] == ("eth0, eth1", "down")
    link_local = AddrSeen(2, socket.AF_INET6, "fe80::1", 0, 253)
    only_link_local_v6 = _state(LinkSeen(2, "eth0", UP), link_local, server="fd00::9")
    assert only_link_local_v6.missing()[:2] == ("eth0", "no address")
    tentative = _state(LinkSeen(2, "eth0", UP), AddrSeen(2, socket.AF_INET6, "fd00::2", 0x40, 0), server="fd00::9")
    assert tentative.missing()[:2] == ("eth0", "no address")
    hint = _state(LinkSeen(2, "eth0", UP), AddrSeen(2, socket.AF_INET, "192.0.2.2", 0, 0)).missing()
    assert hint == (None, "no route to 192.0.2.9", "check the gateway given by ip= or by the DHCP server")


def test_ready_only_for_the_answer_asked_and_a_usable_link() -> None:
    state = _state(LinkSeen(2, "eth0", UP), AddrSeen(2, socket.AF_INET, "192.0.2.2", 0, 0))
    assert state.should_ask
    state.ask_route(7)
    assert not state.should_ask
    state.feed(RouteFound(99, 2, None, None))  # another program's route: ask again
    assert state.ready() is None and state.stale
    state.feed(RouteFound(7, 2, None, "192.0.2.2"))
    assert state.ready() is None  # answered, but stale: asked again before it counts
    state.ask_route(8)
    state.feed(RouteFound(8, 2, None, "192.0.2.2"))
    assert state.ready() == Ready("192.0.2.9", "eth0", None, "192.0.2.2")
    state.ask_route(10)
    state.feed(RouteFound(10, 1, None, None, kind=7))  # RTN_UNREACHABLE (an `ip route add unreachable …`)
    assert state.ready() is None and state.missing()[1] == "no route to 192.0.2.9 (EHOSTUNREACH)"
    state.feed(LinkSeen(2, "eth0", IFF_UP))  # the carrier goes
    state.ask_route(9)
    state.feed(RouteFound(9, 2, None, "192.0.2.2"))
    assert state.ready() is None and state.missing()[:2] == ("eth0", "no carrier")
