#!/bin/sh
# cmdline hook: pylive parses the command line; this hook only applies its answer.
# Exit codes of `pylive cmdline-hook`: 0 live boot (prints root= and rootok=, and pylive_net=1 for
# an image on the network), 3 not a live boot, 2 an option pylive cannot use (it has logged one line
# naming it).
# With systemd, pylive-generator has already answered and kept its answer (status and assignments)
# in /run/initramfs/pylive-cmdline: read from there, the binary is not started a second time.
# rd.cmdline=ask adds options after the generators ran: then the hook asks pylive again.
# Without systemd, a plain root=live:<value> (pylive-lib.sh) needs no answer from the binary: its
# one start is the run (the initqueue job), which checks every option itself and names a bad one.

type die > /dev/null 2>&1 || . /lib/dracut-lib.sh
# shellcheck source=/dev/null
. /lib/pylive-lib.sh

pylive_net=
_pylive_cache=/run/initramfs/pylive-cmdline
if [ -n "$DRACUT_SYSTEMD" ] && [ -r "$_pylive_cache" ] && ! getarg rd.cmdline=ask > /dev/null; then
    _pylive_rc=
    # shellcheck source=/dev/null
    . "$_pylive_cache"
elif [ -z "$DRACUT_SYSTEMD" ] && pylive_plain_root; then
    root=$pylive_root
    # shellcheck disable=SC2034 # dracut's init reads it after the cmdline hooks
    rootok=1
    _pylive_rc=0
else
    _pylive_out=$(/sbin/pylive cmdline-hook)
    _pylive_rc=$?
    [ "$_pylive_rc" = 0 ] && eval "$_pylive_out"
fi
case $_pylive_rc in
    0)
        if [ -n "$pylive_net" ]; then
            # The network is brought up by dracut's network modules (module pylive-net).
            [ -e /lib/net-lib.sh ] \
                || die "pylive: root=$root is on the network, but this initramfs has no network support: build it with 'dracut --add pylive-net' (needs dracut-network)"
            # network-legacy and network-manager start only when asked; pylive waits for the path
            # to the server itself (link, address, route), for rd.pylive.net.timeout seconds.
            echo "rd.neednet=1" > /etc/cmdline.d/90pylive-net.conf
        fi
        if [ -z "$DRACUT_SYSTEMD" ]; then
            # Without systemd, dracut's initqueue runs the boot; it is finished once pylive
            # has built the root (pylive-root leaves .pylive-done), or has failed (its die
            # leaves .die): then dracut
            # goes on to its emergency action at once instead of waiting out rd.retry.
            # Settled jobs run after the queued ifup jobs of the same pass.
            /sbin/initqueue --settled --onetime --unique --name pylive /sbin/pylive-root
            echo '[ -e /run/initramfs/.pylive-done ] || [ -e /run/initramfs/.die ]' \
                > "$hookdir/initqueue/finished/pylive.sh"
        fi
        ;;
    3) ;;
    *)
        die "pylive: invalid kernel command line (see the message above)"
        ;;
esac
unset _pylive_out _pylive_rc _pylive_cache pylive_net pylive_root
unset -f pylive_plain_root
