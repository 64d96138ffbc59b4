#!/bin/sh
# initqueue job (initramfs without systemd): build the live root on $NEWROOT, or die with
# pylive's own one-line message already on the console. The empty .pylive-done tells the
# initqueue's finished hook that the root is there: an empty file needs no room, so a full
# /run (where pylive's state file cannot be written) does not hold the boot until rd.retry.
type die > /dev/null 2>&1 || . /lib/dracut-lib.sh
if /sbin/pylive run --newroot "${NEWROOT:-/sysroot}"; then
    : > /run/initramfs/.pylive-done
else
    die "pylive could not set up the live root"
fi
