#!/bin/sh
# initqueue job (initramfs without systemd): build the live root on $NEWROOT, or die with
# pylive's own one-line message already on the console.
type die > /dev/null 2>&1 || . /lib/dracut-lib.sh
/sbin/pylive run --newroot "${NEWROOT:-/sysroot}" || die "pylive could not set up the live root"
