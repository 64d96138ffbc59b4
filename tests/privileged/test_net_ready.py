"""pylive.net.ready on the host's kernel: a network namespace whose veth link is brought up, given
an address and a route while wait_ready() waits in it; it must return as soon as the route exists."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.privileged
ROOT = Path(__file__).resolve().parents[2]
NS, PEER = f"pylive-ready-{os.getpid()}", f"pylive-peer-{os.getpid()}"
SERVER = "10.231.1.1"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[None]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        if os.environ.get("CI"):
            pytest.fail("privileged tier cannot run in CI: needs root and ip(8)")
        pytest.skip("needs root and ip(8)")
    ip("netns", "add", NS)
    ip("netns", "add", PEER)
    try:
        ip("-n", NS, "link", "set", "lo", "up")
        ip("-n", NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", PEER)
        yield
    finally:
        ip("netns", "del", NS)
        ip("netns", "del", PEER)


def waiter(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, str(ROOT / "tests/privileged/netns_waiter.py"),
                             *args], stdout=subprocess.PIPE, text=True, env=env)


def subscribed(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline()) == {"subscribed": True}


def result(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, _ = proc.communicate(timeout=30)
    got: dict[str, object] = json.loads(out.splitlines()[-1])
    return got


V4 = (SERVER, "10.231.0.2/24", "10.231.0.1/24", "10.231.1.0/24", "10.231.0.1")
V6 = ("fd00:231:1::1", "fd00:231::2/64", "fd00:231::1/64", "fd00:231:1::/64", "fd00:231::1")


@pytest.mark.parametrize("net", [V4, V6], ids=["ipv4", "ipv6"])
def test_returns_when_the_route_exists(netns: None, net: tuple[str, str, str, str, str]) -> None:
    server, address, peer, subnet, gateway = net
    ip("-n", PEER, "addr", "add", peer, "dev", "eth0")
    proc = waiter(server, "20")
    subscribed(proc)
    steps = [("-n", NS, "link", "set", "eth0", "up"),  # up, but the peer is down: no carrier
             ("-n", PEER, "link", "set", "eth0", "up"),  # carrier
             ("-n", NS, "addr", "add", address, "dev", "eth0"),  # an address (IPv6: tentative a while), no route
             ("-n", NS, "route", "add", subnet, "via", gateway)]
    for step in steps:
        time.sleep(0.4)
        assert proc.poll() is None, f"returned before {step}"
        before = time.monotonic()
        ip(*step)
    route_added = time.monotonic()
    got = result(proc)
    if os.environ.get("PYLIVE_RECORD_NETLINK"):  # the unit tests' fixtures (tests/unit/test_net_readiness.py)
        fixture = {"server": server, "datagrams": got["datagrams"]}
        name = "route-added.json" if net == V4 else "route-added-ipv6.json"
        Path(os.environ["PYLIVE_RECORD_NETLINK"], name).write_text(json.dumps(fixture, indent=0) + "\n")
    assert got["ready"] == ["eth0", gateway, address.partition("/")[0]]
    if net == V4:  # IPv6: ready when duplicate address detection is done too, up to a second or two later
        assert isinstance(got["end"], float) and before < got["end"] < route_added + 0.5, (before, route_added, got)


def test_one_line_for_what_is_missing(netns: None) -> None:
    ip("-n", NS, "link", "set", "eth0", "up")
    got = result(waiter(SERVER, "3"))
    assert got["error"] == ("network not ready after 3s: eth0: no carrier: check the cable (or the virtual switch) "
                            "and the link partner")
    ip("-n", PEER, "link", "set", "eth0", "up")
    ip("-n", PEER, "addr", "add", "10.231.0.1/24", "dev", "eth0")
    ip("-n", NS, "addr", "add", "10.231.0.2/24", "dev", "eth0")
    got = result(waiter(SERVER, "3"))
    assert str(got["error"]).startswith(f"network not ready after 3s: no route to {SERVER} (ENETUNREACH): check the")
    got = result(waiter(SERVER, "3", "eth1"))
    assert str(got["error"]).startswith("network not ready after 3s: eth1: no such interface: check the interface")
