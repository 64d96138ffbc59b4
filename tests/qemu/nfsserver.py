"""An NFSv4 export for the network boots: nfs-ganesha (Debian's nfs-ganesha and nfs-ganesha-vfs, user
space: this container's kernel has no nfsd) on 127.0.0.1 only, on a port of its own (not the shared
host's 2049), NFSv4 only (no rpcbind, no mountd). The guest mounts 10.0.2.2 with port=<port>; QEMU's
user network forwards that to 127.0.0.1.

ganesha's VFS backend serves a filesystem with file handles: the files are put into an ext4 image
(mkfs.ext4 -d) loop-mounted read-only for the export's lifetime. Needs root (the loop mount, ganesha).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

GANESHA = "ganesha.nfsd"

CONFIG = """\
NFS_CORE_PARAM {{
    NFS_Port = {port};
    Bind_addr = 127.0.0.1;
    Protocols = 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
}}
NFSV4 {{
    Graceless = true;
    Lease_Lifetime = 10;
    RecoveryBackend = fs;
    RecoveryRoot = {work}/recovery;
}}
NFS_KRB5 {{
    Active_krb5 = false;
}}
EXPORT {{
    Export_Id = 1;
    Path = {path};
    Pseudo = {pseudo};
    Access_Type = RO;
    Squash = No_Root_Squash;
    SecType = sys;
    Protocols = 4;
    Transports = TCP;
    FSAL {{
        Name = VFS;
    }}
}}
LOG {{
    Default_Log_Level = EVENT;
}}
"""


def why_not() -> str | None:
    """Why no export can be served here (None: it can)."""
    if shutil.which(GANESHA, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
        return f"{GANESHA} missing (Debian: apt-get install nfs-ganesha nfs-ganesha-vfs)"
    if os.geteuid() != 0:
        return "serving an NFS export needs root (a loop mount, nfs-ganesha)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NfsExport:
    """`files` (a directory) exported read-only as `pseudo` over NFSv4 on 127.0.0.1:`port`."""

    def __init__(self, files: Path, work: Path, pseudo: str = "/srv/live") -> None:
        self.files = files
        self.work = work
        self.pseudo = pseudo
        self.port = _free_port()
        self.image = work / "export.ext4"
        self.mnt = work / "export"
        self.log = work / "ganesha.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.mounted = False

    def __enter__(self) -> NfsExport:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        work = self.work
        size_mib = sum(p.stat().st_size for p in self.files.rglob("*") if p.is_file()) // (1 << 20) + 16
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(self.files), str(self.image), f"{size_mib}M"],
                       check=True, capture_output=True)
        self.mnt.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-o", "loop,ro", str(self.image), str(self.mnt)], check=True, capture_output=True)
        self.mounted = True
        (work / "recovery").mkdir(exist_ok=True)
        conf = work / "ganesha.conf"
        conf.write_text(CONFIG.format(port=self.port, work=work, path=self.mnt, pseudo=self.pseudo))
        self.proc = subprocess.Popen([GANESHA, "-F", "-f", str(conf), "-L", str(self.log), "-p",
                                      str(work / "ganesha.pid")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{GANESHA} exited ({self.proc.returncode}): {self.log_tail()}")
            if "NFS SERVER INITIALIZED" in self.log_text():
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"{GANESHA} did not listen on 127.0.0.1:{self.port} in 30 s: {self.log_tail()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.mounted:
            subprocess.run(["umount", str(self.mnt)], check=False, capture_output=True)
            self.mounted = False
