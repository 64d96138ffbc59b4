#!/bin/sh
# Nuitka binaries abort without a word when LANG names a locale whose data is not in the
# initramfs (dracut's i18n module installs locale.conf but no locale data): pin the C locale.
export LC_ALL=C
exec /usr/lib/pylive/pylive "$@"
