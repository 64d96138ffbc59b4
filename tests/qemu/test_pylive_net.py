"""Live images over the network, through pylive in QEMU: the guest has QEMU user networking and
downloads from HTTP(S) and FTP servers this test starts on 127.0.0.1 (the guest's 10.0.2.2), or from
QEMU's built-in TFTP server, or mounts an NFSv4 export nfs-ganesha serves on 127.0.0.1 (nfsserver.py);
no other address is contacted. The network is brought up by dracut's own modules (network-legacy
without systemd, systemd-networkd with it), added by pylive-net.

Each boot asserts what it can: the download (mirrors, a 404, a connection closed halfway and resumed,
an untrusted TLS certificate, the checksum), the root built over the image as over a local medium, the
paths left for the booted system, live.updates (over HTTP and FTP); the failures end with pylive's one
line (checksum mismatch, too large for RAM, no link).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from guestreport import loops, mounts, pylive_lines, root_ok
from netserver import NetServer, make_ca, server_cert
from nfsserver import NfsExport, why_not

from qemu import BUILD_DIR, NO_SHELL_ARGS, boot
from qemu._util import run
from qemu.media import make_filler_iso, make_squashfs
from qemu.run_qemu import ConsoleEvent, QmpEvent

NIC = "n0"
OK_S, FAIL_S = 300, 200  # TCG; a failure ends as soon as pylive says its line (rd.emergency=poweroff)


def netdev(tftp: Path | None = None) -> list[str]:
    user = f"user,id={NIC}" + (f",tftp={tftp}" if tftp is not None else "")
    return ["-netdev", user, "-device", f"virtio-net-pci,netdev={NIC}"]


@pytest.fixture(scope="module")
def net_nosd_initrd(kernel) -> Path:
    from qemu.pylive_initrd import build_pylive_initrd
    return build_pylive_initrd(kernel, BUILD_DIR / "initrd" / "pylive-net-nosystemd.img", systemd=False, net=True)


@pytest.fixture(scope="module")
def net_sd_initrd(kernel) -> Path:
    from qemu.pylive_initrd import build_pylive_initrd
    return build_pylive_initrd(kernel, BUILD_DIR / "initrd" / "pylive-net-systemd.img", systemd=True, net=True)


@pytest.fixture(scope="module")
def served(live_iso, test_root, tmp_path_factory) -> Path:
    """What the server offers: the live ISO, its squashfs.img, a 48 MiB ISO with an implanted MD5 (the
    throughput), an updates image, and a checksum file."""
    d = tmp_path_factory.mktemp("served")
    shutil.copyfile(live_iso.path, d / "live.iso")
    run(["osirrox", "-indev", live_iso.path, "-extract", "/LiveOS/squashfs.img", d / "squashfs.img"])
    (d / "squashfs.img").chmod(0o644)
    work = tmp_path_factory.mktemp("big")
    make_filler_iso(work, d / "big.iso", live_iso.label, root_tree=test_root, filler_mib=48)
    run(["implantisomd5", d / "big.iso"])
    upd = tmp_path_factory.mktemp("updates")
    (upd / "etc").mkdir()
    (upd / "etc" / "pylive-updates").write_text("updates-token-4711\n")
    make_squashfs(upd, d / "updates.img", comp="gzip")
    digest = hashlib.sha256((d / "squashfs.img").read_bytes()).hexdigest()
    (d / "SHA256SUMS").write_text(f"{digest}  squashfs.img\n")
    return d


@pytest.fixture
def server(served):
    with NetServer(served) as s:
        yield s


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """A test CA, a server certificate it signed, and a self-signed one nobody trusts (all for 10.0.2.2)."""
    d = tmp_path_factory.mktemp("tls")
    ca = make_ca(d)
    return {"ca": ca, "trusted": server_cert(d, "trusted", ca), "untrusted": server_cert(d, "untrusted", None)}


# Where pylive's TLS context looks first for the CA bundle (pylive/net/stream.py, CA_BUNDLES: Debian's path)
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


def with_ca_bundle(initrd: Path, ca: Path, out: Path) -> Path:
    """`initrd` with a cpio archive appended that puts `ca` in as the CA bundle (the kernel unpacks the
    archives in order, so this file replaces the one the initramfs has, if any)."""
    tree = out.parent / "ca-tree"
    (tree / CA_BUNDLE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca, tree / CA_BUNDLE)
    names = "etc\netc/ssl\netc/ssl/certs\n" + CA_BUNDLE + "\n"
    cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=tree, input=names.encode(),
                          capture_output=True, check=True).stdout
    data = initrd.read_bytes()
    out.write_bytes(data + b"\0" * (-len(data) % 4) + cpio)
    return out


@pytest.fixture(scope="module")
def net_nosd_ca_initrd(net_nosd_initrd, certs, tmp_path_factory) -> Path:
    """The non-systemd network initramfs trusting the test CA (and only it)."""
    return with_ca_bundle(net_nosd_initrd, certs["ca"][0], tmp_path_factory.mktemp("ca-initrd") / "initrd.img")


def net_boot(kernel, initrd, cmdline: str, *, workdir: Path, timeout_s: float = OK_S, tftp: Path | None = None,
             **kw):
    return boot(kernel, initrd, f"{cmdline} ip=dhcp {NO_SHELL_ARGS}", workdir=workdir, timeout_s=timeout_s,
                extra_qemu_args=netdev(tftp), **kw)


def downloaded(console: str) -> tuple[float, float]:
    """(MiB, MiB/s) of pylive's line for the root image's download."""
    lines = [ln for ln in pylive_lines(console, " downloaded: ") if ln.startswith("pylive: root: ")]
    assert len(lines) == 1, console[-3000:]
    m = re.search(r"downloaded: ([\d.]+) MiB in ([\d.]+) s \(([\d.]+) MiB/s\)", lines[0])
    assert m, lines
    return float(m[1]), float(m[3])


def test_squashfs_url_404_mirror_resumed_checksum_and_updates(kernel, net_nosd_initrd, server, served, qemu_workdir):
    """Without systemd: root= gives a 404, the mirror closes halfway and is resumed with a Range request,
    the checksum (a SHA256SUMS file) matches, live.updates puts its file into the root; the squashfs is
    the medium itself, under a temporary device-mapper snapshot."""
    r = net_boot(kernel, net_nosd_initrd,
                 f"root=live:{server.url('missing/squashfs.img')} rd.pylive.mirror={server.url('flaky/squashfs.img')} "
                 f"rd.pylive.checksum={server.url('SHA256SUMS')} live.updates={server.url('updates.img')}",
                 workdir=qemu_workdir / "boot")
    assert r.report_complete, r.console[-4000:]
    root_ok(r.report)
    failed = pylive_lines(r.console, "missing/squashfs.img")
    assert failed and "HTTP 404 Not Found" in failed[0] and failed[0].endswith("trying the next URL"), failed
    gets = [(p, rng, st) for m, p, rng, st in server.requests if m == "GET" and p == "/flaky/squashfs.img"]
    assert gets[0][2] == 200 and any(st == 206 and rng.startswith("bytes=") for _, rng, st in gets[1:]), gets
    mib, rate = downloaded(r.console)
    assert rate > 0
    assert pylive_lines(r.console, "flaky/squashfs.img: the server closed the connection at 1 of 2 MiB"), r.console
    assert pylive_lines(r.console, "sha256 verified"), r.console[-3000:]
    assert mib == pytest.approx((served / "squashfs.img").stat().st_size / (1 << 20), abs=1)
    m = mounts(r.report)
    assert m["/run/initramfs/live-net"][2] == "tmpfs", m
    backing = loops(r.report)
    assert "/run/initramfs/live-net/squashfs.img" in backing, backing
    assert r.report["livedev"].strip().startswith("/dev/loop"), r.report["livedev"]
    assert "live-rw" in r.report["dmsetup-table"] and " snapshot " in r.report["dmsetup-table"]
    assert r.report["updates"].strip() == "updates-token-4711", r.report.get("updates")
    assert pylive_lines(r.console, "live.updates: ")


def test_iso_url_overlayfs_check_and_throughput(kernel, net_nosd_initrd, server, served, qemu_workdir):
    """Without systemd: a 48 MiB ISO over HTTP, its implanted MD5 checked (rd.live.check), mounted on
    /run/initramfs/live as a CD would be, under a temporary OverlayFS. Then the throughput: in the booted
    guest, busybox wget and pylive's own client (`pylive bench-fetch`, the binary the boot left in
    /run/pylive) download the same URL into /run three times each, alternating; the medians are compared
    (no rd.pylive.checksum here: wget sums nothing either)."""
    url = server.url("big.iso")
    r = net_boot(kernel, net_nosd_initrd,
                 f"root=live:{url} rd.live.overlay.overlayfs rd.live.check pylive.test=netbench={url}",
                 workdir=qemu_workdir / "boot", memory_mb=1536)
    assert r.report_complete, r.console[-4000:]
    root_ok(r.report)
    assert pylive_lines(r.console, "passed its media check"), r.console[-3000:]
    m = mounts(r.report)
    assert m["/"][0] == "LiveOS_rootfs" and m["/"][2] == "overlay", m["/"]
    assert m["/run/initramfs/live"][2] == "iso9660", m
    assert "/run/initramfs/live-net/big.iso" in loops(r.report)
    mib, boot_rate = downloaded(r.console)
    assert mib >= 48
    size = (served / "big.iso").stat().st_size
    runs = [dict(kv.split("=", 1) for kv in ln.split()) for ln in r.report["netbench"].splitlines() if "rc=" in ln]
    assert [b["tool"] for b in runs] == ["wget", "pylive"] * 3, r.report["netbench"]
    assert all(b["rc"] == "0" and int(b["bytes"]) == size for b in runs), r.report["netbench"]
    rates = {tool: sorted(size / (1 << 20) / max(float(b["seconds"]), 0.01) for b in runs if b["tool"] == tool)
             for tool in ("wget", "pylive")}
    ratio = rates["pylive"][1] / rates["wget"][1]
    line = (f"median of 3 alternating runs in the booted guest: pylive {rates['pylive'][1]:.1f} MiB/s, busybox wget "
            f"{rates['wget'][1]:.1f} MiB/s: {100 * ratio:.0f} % (pylive "
            + ", ".join(f"{x:.1f}" for x in rates["pylive"]) + "; wget " + ", ".join(f"{x:.1f}" for x in rates["wget"])
            + f"); the boot's own download {boot_rate:.1f} MiB/s")
    print(f"\nthroughput: {line}")
    (BUILD_DIR / "qemu-tests").mkdir(exist_ok=True)
    (BUILD_DIR / "qemu-tests" / "net-throughput.txt").write_text(line + "\n")
    # a loose bound (the host is shared): catches a client gone slow (tiny buffers, a copy per byte), not noise
    assert ratio >= 0.5, line


def test_checksum_mismatch_stops_with_one_line(kernel, net_nosd_initrd, server, qemu_workdir):
    r = net_boot(kernel, net_nosd_initrd,
                 f"root=live:{server.url('squashfs.img')} rd.pylive.checksum=sha256:{'0' * 64}",
                 workdir=qemu_workdir / "boot", timeout_s=FAIL_S)
    assert not r.report and not r.timed_out, r.console[-3000:]
    lines = pylive_lines(r.console, "checksum mismatch")
    assert lines and "squashfs.img: sha256 checksum mismatch (expected 0000000000000000" in lines[0], lines
    assert not pylive_lines(r.console, "root: ")


def test_image_too_large_for_ram_is_refused_before_the_download(kernel, net_nosd_initrd, server, qemu_workdir):
    r = net_boot(kernel, net_nosd_initrd, f"root=live:{server.url('big.iso')} rd.minmem=1500",
                 workdir=qemu_workdir / "boot", timeout_s=FAIL_S, memory_mb=1536)
    assert not r.report and not r.timed_out, r.console[-3000:]
    lines = pylive_lines(r.console, "of RAM can hold it")
    assert lines and re.search(r"big\.iso: the image is 53 MiB, only 0 MiB of RAM can hold it: give the machine "
                               r"more memory, or lower rd\.minmem$", lines[0]), lines
    gets = [rng for m, p, rng, _ in server.requests if m == "GET" and p == "/big.iso"]
    assert len(gets) <= 1 and not any(gets), gets  # at most the request whose headers told the size; no retry


def test_link_down_gives_one_line_after_the_timeout(kernel, net_nosd_initrd, server, qemu_workdir):
    """network-legacy first waits for the carrier itself (about 70 s under TCG), then pylive for 10 s.
    After the line, network-legacy's ifup keeps waiting for the carrier and holds dracut's initqueue
    (dracut's behaviour, not pylive's): the power is cut once the line is seen."""
    marker = "network not ready after 10s"
    r = net_boot(kernel, net_nosd_initrd, f"root=live:{server.url('squashfs.img')} rd.pylive.net.timeout=10",
                 workdir=qemu_workdir / "boot", timeout_s=OK_S,
                 qmp_events=[QmpEvent("set_link", {"name": NIC, "up": False})],
                 events=[ConsoleEvent(marker, None, delay_s=1.0)])
    assert not r.report and r.power_cut and not r.timed_out, r.console[-3000:]
    lines = pylive_lines(r.console, "network not ready after 10s")
    assert lines and lines[0].startswith("pylive: network not ready after 10s: eth0: no carrier: check the cable"), \
        r.console[-3000:]
    assert not any(p == "/squashfs.img" for _, p, _, _ in server.requests)


def test_nfs4_export_on_its_own_port(kernel, net_nosd_initrd, served, qemu_workdir, tmp_path):
    """root=live:nfs4://10.0.2.2:<port>/srv/live/squashfs.img from nfs-ganesha (NFSv4 only, on a port of
    its own; nfsserver.py): the guest mounts the export with port= (mount.nfs: nfs-ganesha's dependency
    nfs-common puts it on the build host, so pylive-net into the initramfs), and the squashfs on it is
    the medium, read over NFS (not copied into RAM)."""
    reason = why_not()
    if reason is not None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):  # conftest's in_ci()
            pytest.fail(f"no NFS server: {reason} (CI is set: this is an error)", pytrace=False)
        pytest.skip(reason)
    files = tmp_path / "export-files"
    files.mkdir()
    shutil.copyfile(served / "squashfs.img", files / "squashfs.img")
    work = tmp_path / "nfs"
    work.mkdir()
    with NfsExport(files, work) as export:
        r = net_boot(kernel, net_nosd_initrd, f"root=live:nfs4://10.0.2.2:{export.port}/srv/live/squashfs.img",
                     workdir=qemu_workdir / "boot")
        log = export.log_text()
    assert r.report_complete, r.console[-4000:] + "\n--- ganesha:\n" + log[-2000:]
    root_ok(r.report)
    m = mounts(r.report)
    nfs = m["/run/initramfs/nfs"]
    assert nfs[0] == "10.0.2.2:/srv/live" and nfs[2] == "nfs4", nfs
    options = nfs[3].split(",")
    assert "ro" in options and f"port={export.port}" in options and any(o.startswith("vers=4") for o in options), nfs
    backing = loops(r.report)
    assert "/run/initramfs/nfs/squashfs.img" in backing, backing
    assert r.report["livedev"].strip().startswith("/dev/loop"), r.report["livedev"]
    assert "live-rw" in r.report["dmsetup-table"] and " snapshot " in r.report["dmsetup-table"]
    assert not pylive_lines(r.console, " downloaded: ")


def test_systemd_tftp_squashfs_overlayfs(kernel, net_sd_initrd, served, qemu_workdir):
    """With systemd (systemd-networkd, ip=dhcp): the squashfs from QEMU's TFTP server, under OverlayFS."""
    r = net_boot(kernel, net_sd_initrd, "root=live:tftp://10.0.2.2/squashfs.img rd.live.overlay.overlayfs",
                 workdir=qemu_workdir / "boot", tftp=served)
    assert r.report_complete, r.console[-4000:]
    root_ok(r.report)
    downloaded(r.console)
    m = mounts(r.report)
    assert m["/"][2] == "overlay" and m["/run/initramfs/live-net"][2] == "tmpfs", m
    assert "/run/initramfs/live-net/squashfs.img" in loops(r.report)


def test_systemd_iso_url_writable_fsimg(kernel, net_sd_initrd, server, qemu_workdir):
    """With systemd: dracut-ng's bare root=http://…iso, the root image copied out of it (rd.writable.fsimg)."""
    r = net_boot(kernel, net_sd_initrd, f"root={server.url('live.iso')} rd.writable.fsimg",
                 workdir=qemu_workdir / "boot")
    assert r.report_complete, r.console[-4000:]
    root_ok(r.report)
    downloaded(r.console)
    m = mounts(r.report)
    assert m["/run/initramfs/live"][2] == "iso9660", m
    assert "/run/initramfs/fsimg/rootfs.img" in loops(r.report), loops(r.report)
    assert "/run/initramfs/live-net/live.iso" in loops(r.report)


def test_https_untrusted_then_trusted_mirror(kernel, net_nosd_ca_initrd, served, certs, qemu_workdir):
    """Without systemd, certificates verified (the default) against the initramfs's CA bundle, which holds
    the test CA: root= is an HTTPS server with a self-signed certificate, refused with its one line
    (verification does not retry), then the mirror, whose certificate the test CA signed, gives the image,
    under OverlayFS. (With the default snapshot this boot hung after switch-root in 3 of 5 runs here: a
    loop worker in clear_page_erms, jbd2 blocked; the snapshot over a squashfs URL is the first test's.)"""
    with NetServer(served, tls=certs["untrusted"]) as bad, NetServer(served, tls=certs["trusted"]) as good:
        r = net_boot(kernel, net_nosd_ca_initrd,
                     f"root=live:{bad.url('squashfs.img')} rd.pylive.mirror={good.url('squashfs.img')} "
                     "rd.live.overlay.overlayfs", workdir=qemu_workdir / "boot")
    assert r.report_complete, r.console[-4000:]
    root_ok(r.report)
    refused = pylive_lines(r.console, bad.url("squashfs.img"))
    assert len(refused) == 1, refused
    assert ("TLS: the server's certificate cannot be verified (self-signed certificate)" in refused[0]
            and refused[0].endswith("trying the next URL")), refused
    assert bad.tls_failures and not bad.requests, (bad.tls_failures, bad.requests)
    assert [(m, p, st) for m, p, _, st in good.requests] == [("GET", "/squashfs.img", 200)], good.requests
    got = [ln for ln in pylive_lines(r.console, " downloaded: ") if good.url("squashfs.img") in ln]
    assert got, r.console[-3000:]
    assert not pylive_lines(r.console, "rd.noverifyssl: ")  # no warning: certificates were verified
    m = mounts(r.report)
    assert m["/"][2] == "overlay" and m["/run/initramfs/live-net"][2] == "tmpfs", m
    assert "/run/initramfs/live-net/squashfs.img" in loops(r.report)


def test_systemd_https_noverifyssl_iso_and_ftp_updates(kernel, net_sd_initrd, served, certs, qemu_workdir):
    """With systemd: the ISO from the HTTPS server nobody trusts, with rd.noverifyssl (its warning), and
    live.updates from an FTP server on 127.0.0.1 (tests/unit/netservers.py's: passive mode; its PASV
    answer names 127.0.0.1, which pylive ignores for the control connection's address, 10.0.2.2)."""
    from tests.unit.netservers import FtpServer

    ftp = FtpServer({"updates.img": (served / "updates.img").read_bytes()})
    try:
        with NetServer(served, tls=certs["untrusted"]) as bad:
            r = net_boot(kernel, net_sd_initrd,
                         f"root=live:{bad.url('live.iso')} rd.noverifyssl "
                         f"live.updates=ftp://10.0.2.2:{ftp.port}/updates.img",
                         workdir=qemu_workdir / "boot")
    finally:
        ftp.close()
    assert r.report_complete, r.console[-4000:]
    root_ok(r.report)
    warned = pylive_lines(r.console, "rd.noverifyssl: the HTTPS server's certificate is not verified")
    assert warned, r.console[-3000:]
    assert [(m, p, st) for m, p, _, st in bad.requests] == [("GET", "/live.iso", 200)], bad.requests
    downloaded(r.console)
    m = mounts(r.report)
    assert m["/run/initramfs/live"][2] == "iso9660", m
    assert "/run/initramfs/live-net/live.iso" in loops(r.report)
    verbs = [c.split()[0].upper() for c in ftp.commands]
    assert "RETR" in verbs and ("EPSV" in verbs or "PASV" in verbs), ftp.commands
    assert "RETR updates.img" in ftp.commands, ftp.commands
    assert r.report["updates"].strip() == "updates-token-4711", r.report.get("updates")
    assert pylive_lines(r.console, "live.updates: ")
