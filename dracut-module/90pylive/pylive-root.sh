#!/bin/sh
# The live root on $NEWROOT in an initramfs without systemd, or die with pylive's own one-line
# message already on the console. The empty .pylive-done tells the initqueue's finished hook that
# the root is there: an empty file needs no room, so a full /run (where pylive's state file cannot
# be written) does not hold the boot until rd.retry.
#   pylive-root          (settled initqueue job) the run, here
#   pylive-root --start  (cmdline hook, plain command line: parse-pylive.sh) the run, in the
#                        background from now on: it checks the options, loads its modules and waits
#                        for the medium while udev starts, instead of after udev has settled
#   pylive-root --wait   (settled initqueue job after --start) until that run has ended; the
#                        initqueue waits here as it waits for the run itself without --start
# The background run holds $lock for its whole life; a failed run is reported by --wait (die, in
# the foreground with the console, as without --start).
lock=/run/initramfs/pylive-run.lock
done=/run/initramfs/.pylive-done
case $1 in
    --start)
        mkdir -p /run/initramfs
        exec 7> "$lock"
        flock -x 7  # taken before --wait can ask for it; the background run keeps it (fd 7)
        (
            if /sbin/pylive run --newroot "${NEWROOT:-/sysroot}"; then
                : > "$done"
            fi
        ) < /dev/null &
        ;;
    --wait)
        type die > /dev/null 2>&1 || . /lib/dracut-lib.sh
        flock -s "$lock" true
        [ -e "$done" ] || die "pylive could not set up the live root"
        ;;
    *)
        type die > /dev/null 2>&1 || . /lib/dracut-lib.sh
        if /sbin/pylive run --newroot "${NEWROOT:-/sysroot}"; then
            : > "$done"
        else
            die "pylive could not set up the live root"
        fi
        ;;
esac
