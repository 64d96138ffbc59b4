#!/bin/sh
# cmdline hook: pylive parses the command line; this hook only applies its answer.
# Exit codes of `pylive cmdline-hook`: 0 live boot (prints root= and rootok=), 3 not a live
# boot, 2 an option pylive cannot use (it has logged one line naming it).

type die > /dev/null 2>&1 || . /lib/dracut-lib.sh

_pylive_out=$(/sbin/pylive cmdline-hook)
case $? in
    0)
        eval "$_pylive_out"
        if [ -z "$DRACUT_SYSTEMD" ]; then
            # Without systemd, dracut's initqueue runs the boot; it is finished once pylive
            # has left its state file.
            /sbin/initqueue --settled --onetime --unique --name pylive /sbin/pylive-root
            echo '[ -e /run/initramfs/pylive.json ]' > "$hookdir/initqueue/finished/pylive.sh"
        fi
        ;;
    3) ;;
    *)
        die "pylive: invalid kernel command line (see the message above)"
        ;;
esac
unset _pylive_out
