"""`pylive overlay create --size SIZE TARGET`: the persistent overlay livecd-iso-to-disk makes, where and
as pylive's (and dracut's) boot look for it: /<rd.live.dir>/overlay-<LABEL>-<UUID>, LABEL and UUID
being the live medium's.

TARGET is the directory a filesystem is mounted on: the stick the live image is on (the name then
comes from that filesystem), or another disk that will hold the overlay (--medium names the live
medium then: its device or ISO image). pylive mounts nothing itself: a block device or an image
file is refused with the line that says to mount it.

Forms, as livecd-iso-to-disk makes them:
- a device-mapper COW file (the default): allocated and reading as zeros, not sparse. A sparse COW
  takes blocks from its filesystem as the live system writes; when that filesystem is full, the
  loop device's write fails, the kernel invalidates the snapshot, and every change in it is lost.
  livecd-iso-to-disk allocates too (fallocate; dd of zeros on ext2/3). FAT has no sparse files
  anyway, and caps a file at 4 GiB - 1 byte.
- --overlayfs on a filesystem that can hold an OverlayFS upper (ext2/3/4, xfs, btrfs, f2fs): the
  directory and its sister ovlwork/.
- --overlayfs elsewhere (vfat): an ext4 image of --size bytes holding overlayfs/ and ovlwork/
  (livecd-iso-to-disk: mkfs.ext4 -L OVERLAY on an allocated file, then the two directories).
Nothing that exists is replaced; what was made is removed again when a step fails.
"""

from __future__ import annotations

import enum
import os
import posixpath
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pylive import mountinfo, probe
from pylive.errors import LiveError, one_line
from pylive.overlay.cowformat import safe_size
from pylive.overlay.files import FAT_MAX_MIB, FAT_TYPES, MIB, allocate, free_bytes, fs_of, mib, parse_size
from pylive.record import record

UPPER_TYPES = ("ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs")  # livecd-iso-to-disk's OverlayFS directory targets
IMAGE_LABEL = "OVERLAY"  # livecd-iso-to-disk's label for the embedded filesystem
SBIN_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin"))


class Form(enum.Enum):
    COW = "a device-mapper COW file"
    DIR = "an OverlayFS directory"
    IMAGE = "an ext4 image holding overlayfs/ and ovlwork/"


@record
class Target:
    """The filesystem the overlay goes on, and the live medium it is named after."""

    top: str  # where the filesystem is mounted
    fstype: str
    free: int  # bytes
    label: str  # the live medium's LABEL and UUID, as blkid (and so udev, and the boot) reads them
    uuid: str


@record
class CreatePlan:
    form: Form
    path: str
    size: int = 0  # bytes, for the COW file and the image
    workdir: str = ""  # the OverlayFS directory's sister ovlwork/
    notes: tuple[str, ...] = ()


def overlay_name(label: str, uuid: str, medium: str) -> str:
    """overlay-<LABEL>-<UUID> (dmsquash-live-root.sh; planner.overlay_path)."""
    if not uuid:
        raise LiveError(f"{one_line(medium)} has no UUID to name the overlay after",
                        "give the live medium (its device or ISO image) with --medium")
    if "/" in label or "\0" in label:
        raise LiveError(f"the label of {one_line(medium)}, {one_line(label)}, has a '/', which no file name can hold",
                        "give the medium another label")
    return f"overlay-{label}-{uuid}"


def live_dir_of(text: str) -> str:
    parts = [p for p in text.split("/") if p]
    if not parts or ".." in parts:
        raise LiveError(f"--dir {one_line(text)}: not a directory on the medium", "use e.g. --dir LiveOS (rd.live.dir)")
    return "/".join(parts)


def plan_create(t: Target, size: int | None, overlayfs: bool, live_dir: str,
                exists: Callable[[str], bool]) -> CreatePlan:
    """Which form, where, how big; LiveError for what cannot be made there. Pure."""
    path = posixpath.join(t.top, live_dir, overlay_name(t.label, t.uuid, t.top))
    fat = t.fstype in FAT_TYPES
    if overlayfs and t.fstype in UPPER_TYPES:
        if size is not None:
            raise LiveError(f"--size: an OverlayFS directory on {t.fstype} has no size (it grows into the free space)",
                            "leave out --size, or leave out --overlayfs for a COW file of that size")
        workdir = posixpath.join(posixpath.dirname(path), "ovlwork")
        plan = CreatePlan(Form.DIR, path, workdir=workdir)
    else:
        form = Form.IMAGE if overlayfs else Form.COW
        if size is None:
            raise LiveError(f"--size is needed for {form.value}"
                            + (f" on {t.fstype}, which cannot hold an OverlayFS directory" if overlayfs else ""),
                            "add e.g. --size 4G")
        notes: tuple[str, ...] = ()
        if form is Form.COW and safe_size(size) != size:
            notes = ("one chunk (4 KiB) more than asked: at exactly that size the kernel would invalidate the "
                     "snapshot when it fills, instead of an overflow that keeps the data",)
            size = safe_size(size)
        if fat and size > FAT_MAX_MIB * MIB:
            raise LiveError(f"--size {mib(size)}: {t.fstype} holds no file larger than 4 GiB - 1 byte",
                            f"use at most --size {FAT_MAX_MIB}M, or put the overlay on another filesystem")
        if size > t.free:
            raise LiveError(f"{one_line(t.top)} has {mib(t.free)} free, {form.value} of {mib(size)} does not fit",
                            "give a smaller --size, or make room")
        plan = CreatePlan(form, path, size, notes=notes)
    for p in (plan.path, plan.workdir):
        if p and exists(p):
            raise LiveError(f"{one_line(p)} exists already; it was left as it is",
                            "move it away first (to start an overlay afresh, boot with rd.live.overlay.reset)")
    return plan


# --- the system ---------------------------------------------------------------------------------


def target_mount(root: Path, target: str) -> mountinfo.MountEntry:
    """The mount TARGET is the top of; LiveError for anything else (pylive does not mount things)."""
    try:
        st = os.stat(target)
    except OSError as e:
        raise LiveError(f"{one_line(target)}: {e.strerror}", "give the directory the stick is mounted on") from None
    if stat.S_ISBLK(st.st_mode):
        where = mountinfo.mount_points_of(root, f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
        if where:
            raise LiveError(f"{one_line(target)} is a block device mounted on {one_line(where[0])}",
                            f"give that directory: pylive overlay create {one_line(where[0])}")
        raise LiveError(f"{one_line(target)} is a block device that is not mounted",
                        f"mount it (e.g. mount {one_line(target)} /mnt) and give that directory: "
                        "pylive does not mount it itself")
    if not stat.S_ISDIR(st.st_mode):
        raise LiveError(f"{one_line(target)} is a file, not a directory",
                        f"mount the filesystem it holds (e.g. mount -o loop {one_line(target)} /mnt) and give "
                        "that directory")
    real = os.path.realpath(target)
    m = fs_of(root, real)
    if m is None:
        raise LiveError(f"{one_line(target)}: which filesystem it is on cannot be told (no /proc/self/mountinfo)",
                        "mount /proc")
    if m.mountpoint != real:
        raise LiveError(f"{one_line(target)} is inside the filesystem mounted on {one_line(m.mountpoint)}, not its top",
                        f"give {one_line(m.mountpoint)}: the overlay goes in a directory at the top of the filesystem")
    if m.fsroot != "/":
        raise LiveError(f"{one_line(target)} shows the directory {one_line(m.fsroot)} of its filesystem, not its top",
                        "give a directory the whole filesystem is mounted on")
    if "ro" in m.options:
        raise LiveError(f"{one_line(target)} is mounted read-only", f"remount it read-write: mount -o remount,rw "
                        f"{one_line(target)}")
    return m


def fs_label_uuid(root: Path, dev: str) -> tuple[str, str] | None:
    """LABEL and UUID of a device or image, from its superblock, or from the udev database when it cannot
    be read; None when neither knows it."""
    try:
        ident = probe.read_identity(dev)
    except OSError:
        ident = None
    if ident is not None and ident.fstype is not None:
        return (ident.labels[0] if ident.labels else ""), ident.uuid
    label, uuid = probe.label_uuid(root, dev)
    return (label, uuid) if uuid else None


def medium_label_uuid(root: Path, mount: mountinfo.MountEntry, medium: str | None) -> tuple[str, str, str]:
    """(LABEL, UUID, what they were read from): --medium's, or the target filesystem's."""
    if medium is not None:
        try:
            ident = probe.read_identity(medium)
        except OSError as e:
            raise LiveError(f"--medium {one_line(medium)}: {e.strerror}",
                            "give the live medium: its device (/dev/sr0, /dev/sdb1) or its ISO image") from None
        if ident.fstype is None:
            raise LiveError(f"--medium {one_line(medium)} holds no filesystem pylive can read a LABEL and UUID from",
                            "give the live medium: its device (/dev/sr0, /dev/sdb1) or its ISO image")
        return (ident.labels[0] if ident.labels else ""), ident.uuid, medium
    found = fs_label_uuid(root, mount.source)
    if found is None:
        raise LiveError(f"the LABEL and UUID of {one_line(mount.source)} (mounted on {one_line(mount.mountpoint)}) "
                        "cannot be read", "run as root, or give the live medium with --medium")
    return found[0], found[1], mount.source


def make(plan: CreatePlan) -> None:
    """Make what the plan says; on any failure, remove what was made."""
    parent = posixpath.dirname(plan.path)
    made_parent = not os.path.isdir(parent)
    try:
        os.makedirs(parent, exist_ok=True)
        if plan.form is Form.COW:
            allocate(plan.path, plan.size)
        elif plan.form is Form.DIR:
            _make_dirs(plan.path, plan.workdir)
        else:
            _make_image(plan.path, plan.size)
    except BaseException:
        if made_parent:
            try:
                os.rmdir(parent)
            except OSError:
                pass
        raise


def _make_dirs(path: str, workdir: str) -> None:
    if os.geteuid() != 0:
        raise LiveError(f"{one_line(path)}: an OverlayFS directory must belong to root (it becomes the live root's /)",
                        "run as root")
    os.mkdir(path, 0o755)
    try:
        os.mkdir(workdir, 0o755)
        for p in (path, workdir):
            os.chmod(p, 0o755)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def _make_image(path: str, size: int) -> None:
    tools = {t: shutil.which(t, path=SBIN_PATH) for t in ("mkfs.ext4", "debugfs")}
    missing = [t for t, found in tools.items() if found is None]
    if missing:
        raise LiveError(f"{' and '.join(missing)} not found: the image form is an ext4 filesystem",
                        "install e2fsprogs")
    allocate(path, size)
    try:
        with tempfile.TemporaryDirectory(prefix="pylive-overlay-") as tree:
            for d in ("overlayfs", "ovlwork"):
                os.mkdir(os.path.join(tree, d), 0o755)
                os.chmod(os.path.join(tree, d), 0o755)
            _tool([str(tools["mkfs.ext4"]), "-q", "-F", "-L", IMAGE_LABEL, "-E", "nodiscard", "-d", tree, path])
        # the upper directory becomes the live root's /: root's, whoever ran this (mke2fs -d copies owners)
        script = "".join(f"sif /{d} {field} 0\n" for d in ("overlayfs", "ovlwork") for field in ("uid", "gid"))
        _tool([str(tools["debugfs"]), "-w", "-f", "-", path], stdin=script)
    except BaseException:
        os.unlink(path)
        raise


def _tool(cmd: list[str], stdin: str = "") -> None:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise LiveError(f"{os.path.basename(cmd[0])} failed on {one_line(cmd[-1])}: {last}", "see its message")


def boot_hint(root: Path, mount: mountinfo.MountEntry) -> str:
    """The rd.live.overlay= that names the filesystem holding the overlay."""
    found = fs_label_uuid(root, mount.source)
    if found is None:
        return "rd.live.overlay=LABEL=<this filesystem's label> (or UUID=)"
    label, uuid = found
    return f"rd.live.overlay=LABEL={label}" if label and " " not in label else f"rd.live.overlay=UUID={uuid}"


def run(target: str, size_text: str | None, overlayfs: bool, *, live_dir: str = "LiveOS", medium: str | None = None,
        root: Path = Path("/")) -> int:
    """`pylive overlay create`: make the overlay, then say what it is and how to boot with it."""
    size = parse_size(size_text) if size_text is not None else None
    mount = target_mount(root, target)
    label, uuid, source = medium_label_uuid(root, mount, medium)
    t = Target(mount.mountpoint, mount.fstype, free_bytes(mount.mountpoint), label, uuid)
    plan = plan_create(t, size, overlayfs, live_dir_of(live_dir), os.path.lexists)
    make(plan)
    what = plan.form.value + (f" of {mib(plan.size)}" if plan.size else "")
    if plan.form is Form.COW:
        what += ", allocated, reading as zeros (the first boot writes its header)"
    print(f"created {plan.path}: {what}" + (f", and {plan.workdir}" if plan.workdir else ""))
    print(f"named after the live medium {source}: LABEL={label!r}, UUID={uuid}")
    for note in plan.notes:
        print(f"note: {note}")
    print(f"boot with: {boot_hint(root, mount)}")
    return 0

