"""A live image over the network (pure): root=live:http(s)://, ftp://, tftp:// (downloaded into RAM),
root=live:nfs:// (read from the NFS export), and live.updates=<url>.

Once the image is a file (in RAM, or on the mounted export), it boots exactly as root=live:<file> in
the initramfs does (plan_live_file): an ISO is attached and checked (rd.live.check) and mounted on
/run/initramfs/live, a squashfs/EROFS image is attached and mounted, a root filesystem image is the
root itself. So /run/initramfs/live, /run/initramfs/livedev and every overlay mode are the local ones.
"""

from __future__ import annotations

import posixpath

from pylive.devspec import DeviceSpec, SpecKind
from pylive.errors import CmdlineError, NotSupportedYet, shown
from pylive.options import LiveOptions, Percent
from pylive.plan import FetchImage, MakeDir, Mount, MountNfs, Notice, Step, WaitNetwork
from pylive.planner.ram import RAM_MARGIN_MIB
from pylive.ramcopy import MIB
from pylive.record import fields, record

NET_DIR = "/run/initramfs/live-net"  # a tmpfs of its own holding the downloaded image (stays for the booted system)
NFS_MNT = "/run/initramfs/nfs"  # root=live:nfs://: the export, read-only
UPDATES_IMG = "/run/initramfs/live-net/updates.img"  # live.updates=<url>
UPDATES_DIR = "/updates"  # dracut's livenet unpacks the updates here; apply-live-updates copies them
NET_KINDS = (SpecKind.URL, SpecKind.NFS)
EXAMPLE = "root=live:http://192.168.1.1/LiveOS/squashfs.img"
NFS_EXAMPLE = "root=live:nfs://192.168.1.1/srv/live/squashfs.img"
# dracut's url-lib (nfs_to_var): nfs:// and nfs4://; the export is the URL's directory, the image its last name
NFS_SCHEMES = ("nfs://", "nfs4://")


@record
class NetRoot:
    """What a network root= names: the image's URLs (root= first, then the mirrors), the server to reach."""

    urls: tuple[str, ...]
    server: str  # host name or address of root='s URL
    file_name: str
    nfs_export: str = ""  # nfs: server:/export
    nfs_version: str = ""  # nfs4:// → "4"
    nfs_port: int = 0  # nfs://server:port/… (dracut's rfc2224_nfs_to_var: port=); 0: the default

    @property
    def is_nfs(self) -> bool:
        return bool(self.nfs_export)


def is_network(opts: LiveOptions) -> bool:
    return opts.spec is not None and opts.spec.kind in NET_KINDS


def parse_net_root(opts: LiveOptions) -> NetRoot:
    """root= (and rd.pylive.mirror=) as a NetRoot; CmdlineError naming the option when a URL cannot be used."""
    from pylive.net.errors import BadUrl
    from pylive.net.url import parse_url

    assert opts.spec is not None and opts.spec.kind in NET_KINDS
    text = opts.spec.value
    if opts.iso_scan_filename is not None:
        raise CmdlineError("iso-scan/filename", opts.iso_scan_filename,
                           f"looks for the ISO on the disks, but root=live:{shown(text)} is on the network",
                           "root=live:http://192.168.1.1/live.iso without iso-scan/filename")
    if opts.spec.kind is SpecKind.NFS:
        return _parse_nfs(text)
    urls = (text, *opts.mirrors)
    for option, u in zip(("root", *("rd.pylive.mirror",) * len(opts.mirrors)), urls, strict=True):
        try:
            parse_url(u)
        except BadUrl as e:
            raise CmdlineError(option, u, e.message.removeprefix(f"{shown(u)}: "), EXAMPLE) from None
    first = parse_url(text)
    return NetRoot(urls, first.host, first.file_name)


def _parse_nfs(text: str) -> NetRoot:
    from pylive.net.errors import BadUrl
    from pylive.net.url import DEFAULT_PORTS, parse_url

    if not text.startswith(NFS_SCHEMES):
        raise NotSupportedYet(f"root=live:{shown(text)} (an NFS root other than nfs://server/path/image)")
    version = "4" if text.startswith("nfs4://") else ""
    try:
        url = parse_url("nfs://" + text.partition("://")[2])
    except BadUrl as e:
        raise CmdlineError("root", text, e.message.partition(": ")[2] or e.message, NFS_EXAMPLE) from None
    export, _, name = url.file_path.rpartition("/")
    if not name:
        raise CmdlineError("root", text, "names the export but no image file in it", NFS_EXAMPLE)
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = 0 if url.port == DEFAULT_PORTS["nfs"] else url.port  # 0: the client's default (2049)
    return NetRoot((text,), url.host, name, f"{host}:{export or '/'}", version, port)


def download_room_bytes(opts: LiveOptions, mem_total_mib: int | None) -> int | None:
    """How large a downloaded image may be: RAM less rd.minmem (dracut-ng's check_live_ram refuses an
    image that would leave less), and never less than RAM_MARGIN_MIB left for the initramfs."""
    if mem_total_mib is None:
        return None
    minmem = opts.minmem_mib.of(mem_total_mib) if isinstance(opts.minmem_mib, Percent) else opts.minmem_mib
    return max(0, mem_total_mib - max(minmem, RAM_MARGIN_MIB)) * MIB


def plan_network(opts: LiveOptions, net: NetRoot, mem_total_mib: int | None) -> tuple[Step, ...]:
    """Wait for a usable path to the server, then have the image as a file: downloaded into a tmpfs of
    its own (sized to the room the image may take), or on the NFS export mounted read-only."""
    steps: list[Step] = [WaitNetwork(net.server, opts.net_timeout_s)]
    if net.is_nfs:
        return (*steps, MakeDir(NFS_MNT), MountNfs(net.nfs_export, NFS_MNT, net.nfs_version, net.nfs_port))
    room = download_room_bytes(opts, mem_total_mib)
    if opts.noverifyssl and any(u.startswith("https://") for u in net.urls):
        steps.append(Notice("rd.noverifyssl: the HTTPS server's certificate is not verified; "
                            "anyone on the path to it can change the image"))
    size = f"size={max(room // MIB, 1)}m" if room is not None else "size=90%"
    steps += [
        MakeDir(NET_DIR),
        Mount("tmpfs", NET_DIR, "tmpfs", (size, "mode=0755")),
        FetchImage(net.urls, image_file(net), opts.checksum, not opts.noverifyssl, room),
    ]
    return tuple(steps)


def image_file(net: NetRoot) -> str:
    """Where the image is once plan_network has run."""
    if net.is_nfs:
        return posixpath.join(NFS_MNT, net.file_name)
    return posixpath.join(NET_DIR, net.file_name or "image")


def as_file_root(opts: LiveOptions, net: NetRoot) -> LiveOptions:
    """The options for the rest of the boot: root= is now the image file, as root=live:<file> is. An
    image in RAM already is what rd.live.ram would make of it: that copy is left out."""
    path = image_file(net)
    kind = SpecKind.ISO_FILE if path.lower().endswith(".iso") else SpecKind.IMG_FILE
    values = {name: getattr(opts, name) for name in fields(opts)}
    values["spec"] = DeviceSpec(kind, path)
    if not net.is_nfs:
        values["live_ram"] = False
    return LiveOptions(**values)


def plan_updates(opts: LiveOptions, mem_total_mib: int | None) -> tuple[Step, ...]:
    """live.updates=<url>: the updates image, downloaded (dracut's fetch-liveupdate.sh); it is applied
    to the root once that is mounted (apply_updates in boot.py)."""
    if not opts.live_updates:
        return ()
    from pylive.net.errors import BadUrl
    from pylive.net.url import parse_url

    try:
        url = parse_url(opts.live_updates)
    except BadUrl as e:
        raise CmdlineError("live.updates", opts.live_updates, e.message.partition(": ")[2] or e.message,
                           "live.updates=http://192.168.1.1/updates.img") from None
    if url.scheme == "nfs":
        raise NotSupportedYet("live.updates=nfs://… (fetch the updates image over http, ftp or tftp)")
    steps: list[Step] = [WaitNetwork(url.host, opts.net_timeout_s), MakeDir(NET_DIR)]
    return (*steps, FetchImage((opts.live_updates,), UPDATES_IMG, None, not opts.noverifyssl,
                               download_room_bytes(opts, mem_total_mib), "live.updates"))
