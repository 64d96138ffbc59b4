"""Whether the path to a server is usable (pure): rtnetlink messages, decoded with pyroute2's message
classes, fed to a state machine that knows the links (up, carrier), their addresses, and the kernel's
answer to "which route to <server>?" (RTM_GETROUTE). ready.py feeds it from a netlink socket; the
unit tests from recorded messages."""

from __future__ import annotations

import errno
import socket
import struct

from pylive.record import record

# rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if.h, linux/if_addr.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE = 18, 22, 26
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400
GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE
RTA_DST = 1
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE = 16, 17, 20, 21, 24, 25
IFF_UP, IFF_LOOPBACK, IFF_LOWER_UP = 0x1, 0x8, 0x10000
IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x08, 0x40
RT_SCOPE_LINK = 253
RTN_UNICAST, RTN_LOCAL = 1, 2
HINTS = {
    "no such interface": "check the interface named by ip=, and that its driver is in the initramfs",
    "no network interface": "check that the network driver is in the initramfs (dracut --add-drivers)",
    "down": "the network setup did not bring it up: check ip= and rd.neednet=1",
    "no carrier": "check the cable (or the virtual switch) and the link partner",
    "no address": "check ip= (dhcp, or a static address) and the DHCP server",
    "no route": "check the gateway given by ip= or by the DHCP server",
}


@record
class LinkSeen:
    index: int
    name: str
    flags: int
    deleted: bool = False


@record
class AddrSeen:
    index: int
    family: int
    address: str
    flags: int
    scope: int
    deleted: bool = False


@record
class RouteFound:
    """A route: the answer to our RTM_GETROUTE `seq`, or (another seq) one another program added."""

    seq: int
    oif: int
    gateway: str | None
    prefsrc: str | None
    kind: int = 1  # rtm_type: RTN_UNICAST, RTN_LOCAL (the server is this machine), or unreachable, prohibit…


@record
class RouteMissing:
    """Our RTM_GETROUTE `seq` failed (ENETUNREACH: no route)."""

    seq: int
    error: int


@record
class RoutesChanged:
    """A route was added or removed (multicast): the route to the server must be asked again."""


@record
class Done:
    """The end of a dump (or an acknowledgement) of request `seq`."""

    seq: int


Event = LinkSeen | AddrSeen | RouteFound | RouteMissing | RoutesChanged | Done


def decode(data: bytes) -> list[Event]:
    """The events in one netlink datagram (several messages; the ones not of interest are skipped)."""
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    events: list[Event] = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _, seq = struct.unpack_from("=IHHI", data, offset)
        if length < 16:
            break
        start = offset
        chunk = data[start : start + length]
        offset += (length + 3) & ~3
        if kind in (RTM_NEWLINK, RTM_DELLINK):
            link = ifinfmsg(chunk)
            link.decode()
            events.append(LinkSeen(link["index"], link.get_attr("IFLA_IFNAME") or f"#{link['index']}",
                                   link["flags"], kind == RTM_DELLINK))
        elif kind in (RTM_NEWADDR, RTM_DELADDR):
            addr = ifaddrmsg(chunk)
            addr.decode()
            flags = addr.get_attr("IFA_FLAGS") or addr["flags"]
            address = addr.get_attr("IFA_LOCAL") or addr.get_attr("IFA_ADDRESS") or ""
            events.append(AddrSeen(addr["index"], addr["family"], address, flags, addr["scope"], kind == RTM_DELADDR))
        elif kind in (RTM_NEWROUTE, RTM_DELROUTE):
            if seq and kind == RTM_NEWROUTE:
                route = rtmsg(chunk)
                route.decode()
                events.append(RouteFound(seq, route.get_attr("RTA_OIF") or 0, route.get_attr("RTA_GATEWAY"),
                                         route.get_attr("RTA_PREFSRC"), route["type"]))
            else:
                events.append(RoutesChanged())
        elif kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, start + 16)
            events.append(RouteMissing(seq, -error) if error else Done(seq))
        elif kind == NLMSG_DONE:
            events.append(Done(seq))
    return events


@record
class Ready:
    """The path to `server` is usable: through `interface` (`gateway` or on-link), from `source`."""

    server: str
    interface: str
    gateway: str | None
    source: str | None


class Readiness:
    """The state of the links, addresses and the route to `server` (an address: ready.py resolves a
    name first), fed events in any order. `interface` (ip=<interface>:…) only names what is missing
    while the kernel has no route to the server."""

    def __init__(self, server: str, interface: str | None = None) -> None:
        self.server = server
        self.family = socket.AF_INET6 if ":" in server else socket.AF_INET
        self.interface = interface
        self.links: dict[int, LinkSeen] = {}
        self.addrs: dict[int, dict[str, AddrSeen]] = {}
        self.route: RouteFound | None = None
        self.route_error: int | None = None
        self.asked = 0  # the seq of the last route question
        self.answered = 0  # the seq of its answer
        self.stale = True  # something changed since the route was last asked

    def feed(self, event: Event) -> None:
        if isinstance(event, LinkSeen):
            if event.deleted:
                self.links.pop(event.index, None)
                self.addrs.pop(event.index, None)
            else:
                self.links[event.index] = event
            self.stale = True
        elif isinstance(event, AddrSeen):
            if event.family == self.family:
                on_link = self.addrs.setdefault(event.index, {})
                if event.deleted:
                    on_link.pop(event.address, None)
                else:
                    on_link[event.address] = event
                self.stale = True
        elif isinstance(event, RoutesChanged):
            self.stale = True
        elif isinstance(event, RouteFound) and event.seq != self.asked:
            self.stale = True  # a route added by another program (`ip route add` sets a seq of its own)
        elif isinstance(event, RouteFound | RouteMissing) and event.seq == self.asked:
            self.answered = event.seq
            usable = isinstance(event, RouteFound) and event.kind in (RTN_UNICAST, RTN_LOCAL)
            self.route = event if isinstance(event, RouteFound) and usable else None
            self.route_error = (event.error if isinstance(event, RouteMissing)
                                else None if usable else errno.EHOSTUNREACH)

    def ask_route(self, seq: int) -> None:
        """The caller sends RTM_GETROUTE for the server with this seq now."""
        self.asked = seq
        self.stale = False

    @property
    def should_ask(self) -> bool:
        """Whether to ask the kernel for the route again: something changed, no question is open."""
        return self.stale and self.asked == self.answered

    def ready(self) -> Ready | None:
        route = self.route
        if route is None or self.stale or self.asked != self.answered:
            return None
        link = self.links.get(route.oif)
        if link is None or self._link_problem(link) or not self._usable(route.oif, link):
            return None
        return Ready(self.server, link.name, route.gateway, route.prefsrc)

    def missing(self) -> tuple[str | None, str, str]:
        """(interface or None, what is missing, what to do) for the one-line error at the timeout."""
        if self.route is not None and self.route.oif in self.links:
            link = self.links[self.route.oif]
            problem = self._link_problem(link) or ("" if self._usable(link.index, link) else "no address")
            if problem:
                return link.name, problem, HINTS[problem]
        links = [link for link in self.links.values() if not link.flags & IFF_LOOPBACK]
        if self.interface is not None:
            links = [link for link in links if link.name == self.interface]
            if not links:
                return self.interface, "no such interface", HINTS["no such interface"]
        if not links:
            return None, "no network interface", HINTS["no network interface"]
        problems = [self._link_problem(link) for link in links]
        if all(problems):
            worst = "down" if all(p == "down" for p in problems) else "no carrier"
            named = sorted(link.name for link, p in zip(links, problems, strict=True) if p == worst)
            return ", ".join(named), worst, HINTS[worst]
        with_carrier = [link for link in links if not self._link_problem(link)]
        if not any(self._usable(link.index, link) for link in with_carrier):
            return ", ".join(sorted(link.name for link in with_carrier)), "no address", HINTS["no address"]
        reason = f" ({errno.errorcode.get(self.route_error, self.route_error)})" if self.route_error else ""
        return None, f"no route to {self.server}{reason}", HINTS["no route"]

    @staticmethod
    def _link_problem(link: LinkSeen) -> str:
        if not link.flags & IFF_UP:
            return "down"
        if not link.flags & (IFF_LOWER_UP | IFF_LOOPBACK):
            return "no carrier"
        return ""

    def _usable(self, index: int, link: LinkSeen) -> bool:
        """An address the server can answer to: not tentative (IPv6 duplicate address detection), not
        link-local unless the server is; the loopback needs none of its own."""
        if link.flags & IFF_LOOPBACK:
            return True
        server_link_local = self.server.lower().startswith("fe80:")
        return any(not a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
                   and (a.scope != RT_SCOPE_LINK or server_link_local or self.family == socket.AF_INET)
                   for a in self.addrs.get(index, {}).values())


class Conversation:
    """What to send to the kernel and when (pure; ready.py does the socket I/O): dump the links, then
    the addresses (one dump at a time on a socket: the kernel refuses a second with EBUSY), then ask
    for the route to the server each time something changed. `server` None: a name not resolved yet
    (set_server() once it is)."""

    def __init__(self, server: str | None, interface: str | None = None) -> None:
        self.state = Readiness(server or "0.0.0.0", interface)
        self.server = server
        self.seq = 0
        self._dumps = [RTM_GETLINK, RTM_GETADDR]
        self._dumping = 0

    def start(self) -> list[bytes]:
        return [self._next_dump()]

    def received(self, data: bytes) -> list[bytes]:
        """Feeds a datagram; the requests to send now."""
        requests = []
        for event in decode(data):
            self.state.feed(event)
            if isinstance(event, Done | RouteMissing) and event.seq == self._dumping:
                self._dumping = 0
                if self._dumps:
                    requests.append(self._next_dump())
        return requests + self._questions()

    def _questions(self) -> list[bytes]:
        if self._dumping or self.server is None or not self.state.should_ask:
            return []
        self.seq += 1
        self.state.ask_route(self.seq)
        return [route_request(self.server, self.seq)]

    @property
    def needs_name(self) -> bool:
        """The dumps are done and only the server's address is missing: time to resolve its name."""
        return self.server is None and not self._dumping and self.state.missing()[1].startswith("no route")

    def set_server(self, address: str) -> list[bytes]:
        old = self.state
        self.state = Readiness(address, old.interface)
        self.state.links = old.links
        self.state.addrs = old.addrs if self.state.family == old.family else {}
        self.server = address
        return self._questions()

    def _next_dump(self) -> bytes:
        self.seq += 1
        self._dumping = self.seq
        return dump_request(self._dumps.pop(0), self.seq)


def header(kind: int, flags: int, seq: int, payload: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload


def dump_request(kind: int, seq: int) -> bytes:
    """RTM_GETLINK (struct ifinfomsg) or RTM_GETADDR (struct ifaddrmsg) for every family."""
    payload = struct.pack("=BxHiII", 0, 0, 0, 0, 0) if kind == RTM_GETLINK else struct.pack("=BBBBI", 0, 0, 0, 0, 0)
    return header(kind, NLM_F_REQUEST | NLM_F_DUMP, seq, payload)


def route_request(address: str, seq: int) -> bytes:
    """RTM_GETROUTE for one address (struct rtmsg + RTA_DST): the kernel answers with the route it would use."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    raw = socket.inet_pton(family, address)
    rtmsg = struct.pack("=BBBBBBBBI", family, len(raw) * 8, 0, 0, 0, 0, 0, 0, 0)
    return header(RTM_GETROUTE, NLM_F_REQUEST, seq, rtmsg + struct.pack("=HH", 4 + len(raw), RTA_DST) + raw)
