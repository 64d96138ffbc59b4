"""Logging: /dev/kmsg with syslog priorities in the initramfs, stderr elsewhere (loghandlers.py).

pylive's modules log through `log`, as through a logging.Logger (`log.info("… %s", x)`). It passes
each record that clears the level log_setup() chose to the logging module's "pylive" logger, and
only then imports logging and sets up the handler: `pylive explain` (warnings and up) and the
cmdline hook do not load logging on a clean command line (about 4 ms of a cold start, `make bench`).
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    import logging

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40  # logging's levels
# What the person at the machine asked for (rd.live.check's verdict, the medium that can be removed):
# syslog's notice. With `console`, records from NOTICE up also reach the console when the kernel
# would not print them there (loghandlers.py); INFO is the log's, and the console's only at a high
# loglevel.
NOTICE = 25


class Log:
    """The logger calls pylive makes. Before log_setup(), logging alone decides what is emitted."""

    def __init__(self) -> None:
        self.level = 0
        self.kmsg: bool | None = None  # None: log_setup() has not run
        self.console = False
        self._pending = False  # log_setup() ran; logging is not set up accordingly yet

    @property
    def is_set_up(self) -> bool:
        return self.kmsg is not None

    def log(self, level: int, msg: str, *args: object, exc_info: bool = False) -> None:
        if level >= self.level:
            self._logger().log(level, msg, *args, exc_info=exc_info)

    def debug(self, msg: str, *args: object) -> None:
        self.log(DEBUG, msg, *args)

    def info(self, msg: str, *args: object) -> None:
        self.log(INFO, msg, *args)

    def notice(self, msg: str, *args: object) -> None:
        self.log(NOTICE, msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        self.log(WARNING, msg, *args)

    def error(self, msg: str, *args: object) -> None:
        self.log(ERROR, msg, *args)

    def exception(self, msg: str, *args: object) -> None:
        self.log(ERROR, msg, *args, exc_info=True)

    def _logger(self) -> logging.Logger:
        import logging

        if self._pending:
            from pylive.loghandlers import configure

            self._pending = False
            return configure(self.level, bool(self.kmsg), self.console)
        return logging.getLogger("pylive")


log = Log()


def log_setup(debug: bool = False, kmsg: bool = False, level: int | None = None, console: bool = False) -> Log:
    """Records from `level` (default INFO, or DEBUG) up go to /dev/kmsg if `kmsg` and writable, else stderr.
    console (the boot, not the cmdline hook): those from NOTICE up are shown on /dev/console, too,
    when the kernel's console loglevel hides them (`quiet`, `loglevel=`)."""
    log.level = level if level is not None else DEBUG if debug else INFO
    log.kmsg = kmsg
    log.console = console
    log._pending = True
    return log
