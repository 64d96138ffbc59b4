#!/bin/sh
# pylive QEMU test root: /sbin/init of the booted live root.
#
# Writes a line-oriented report to the second serial port (/dev/ttyS1):
#   @@ <section-name>
#   <raw content lines>
#   ...
#   @@ end
# and then powers the machine off. It must never hang: a background watchdog
# forces a power-off, and if everything else fails PID 1 exits (kernel panic,
# which with panic=1 and QEMU -no-reboot ends the VM).

PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
REPORT_DEV=/dev/ttyS1
WATCHDOG_S=200  # the overlay-watch exercises fill the root step by step: over a minute under TCG

kmsg() {
    # messages with kernel timestamps in dmesg, and on the console
    # (kmsg reaches the serial console too; echo only if kmsg is unusable)
    if ! { [ -w /dev/kmsg ] && echo "pylive-test-init: $*" > /dev/kmsg; } 2>/dev/null; then
        echo "pylive-test-init: $*"
    fi
}

is_mounted() {
    # $1 = mount point; works without the mountpoint applet
    [ -r /proc/mounts ] || return 1
    while read -r _dev _mp _rest; do
        [ "$_mp" = "$1" ] && return 0
    done < /proc/mounts
    return 1
}

mount_api() {
    [ -r /proc/mounts ] || mount -t proc -o nosuid,noexec,nodev proc /proc
    is_mounted /sys || mount -t sysfs -o nosuid,noexec,nodev sysfs /sys
    is_mounted /dev || mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev
    is_mounted /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
}

power_off() {
    sync
    poweroff -f
    sleep 3
    echo o > /proc/sysrq-trigger
    sleep 10
    # still alive: let PID 1 exit -> kernel panic -> panic=1 -> QEMU -no-reboot exits
    exit 1
}

mount_api 2>/dev/null

# systemd's switch-root leaves stdio on /dev/null; use the console if possible
if [ -c /dev/console ]; then
    exec < /dev/console > /dev/console 2>&1
fi

kmsg "started as PID $$"

# watchdog: whatever hangs below, the VM goes down
(
    sleep "$WATCHDOG_S"
    kmsg "watchdog fired after ${WATCHDOG_S}s, forcing power-off"
    echo o > /proc/sysrq-trigger
) &

if ! exec 3> "$REPORT_DEV"; then
    kmsg "cannot open $REPORT_DEV"
    power_off
fi
stty -F "$REPORT_DEV" raw -echo 2>/dev/null || :

section() {
    printf '@@ %s\n' "$1" >&3
}

# run a command for the report, stderr included
rep() {
    "$@" >&3 2>&1 || printf '(exit status %s: %s)\n' "$?" "$*" >&3
}

section cmdline
rep cat /proc/cmdline

section mounts
rep cat /proc/mounts

section initrd-marker
# what a test's initramfs says of itself (a pre-pivot hook appended to it copies the marker; empty
# for every other initramfs)
cat /run/initramfs/pylive-test-marker 2>/dev/null >&3 || true

section dmsetup-table
rep dmsetup table

section dmsetup-status
rep dmsetup status

section dmsetup-ls
rep dmsetup ls

section mapper
rep ls -l /dev/mapper

section loops
# one line per loop device: name size=<512-byte sectors> ro=<0|1> backing_file=<path>
for d in /sys/block/loop*; do
    [ -e "$d" ] || continue
    n=${d##*/}
    sz=$(cat "$d/size" 2>/dev/null)
    ro=$(cat "$d/ro" 2>/dev/null)
    bf=
    [ -r "$d/loop/backing_file" ] && bf=$(cat "$d/loop/backing_file" 2>/dev/null)
    printf '%s size=%s ro=%s backing_file=%s\n' "$n" "$sz" "$ro" "$bf" >&3
done

section blockdevs
# one line per block device: name size=<512-byte sectors> ro=<0|1>
for d in /sys/class/block/*; do
    [ -e "$d" ] || continue
    printf '%s size=%s ro=%s\n' "${d##*/}" "$(cat "$d/size" 2>/dev/null)" \
        "$(cat "$d/ro" 2>/dev/null)" >&3
done

section livedev
rep readlink /run/initramfs/livedev

section run-initramfs
rep ls -la /run/initramfs
rep ls -la /run

section dev-live-base
rep readlink /dev/live-base

section previous-write
# what an earlier boot left (persistent overlays); empty on a fresh root
cat /pylive-write-test 2>/dev/null >&3 || true
section previous-powercut
cat /pylive-powercut-synced 2>/dev/null >&3 || true
section updates
# a file live.updates= put into the root (tests/qemu/test_pylive_net.py)
cat /etc/pylive-updates 2>/dev/null >&3 || true
section root-write
token=$(cat /proc/sys/kernel/random/uuid 2>/dev/null)
[ -n "$token" ] || token="t$$-$(date +%s)"
if echo "$token" > /pylive-write-test 2>&3; then
    sync
    echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
    back=$(cat /pylive-write-test 2>&3)
else
    back=
fi
printf 'token=%s\n' "$token" >&3
printf 'readback=%s\n' "$back" >&3
if [ "$back" = "$token" ]; then
    printf 'match=yes\n' >&3
else
    printf 'match=no\n' >&3
fi
rep stat -f /
rep df -k /

section pylive-status
# what the initramfs left for the booted system: `pylive status --json` and the dmsetup line beside it
if [ -x /run/pylive/pylive ]; then
    dmsetup status | sed 's/^/dmsetup-before: /' >&3
    /run/pylive/pylive status --json >&3 2>&3
    printf 'rc=%s\n' "$?" >&3
    dmsetup status | sed 's/^/dmsetup: /' >&3
    printf 'run-pylive-kib=%s\n' "$(du -sk /run/pylive | cut -f1)" >&3
    printf 'unit=%s\n' "$(readlink /run/systemd/system/multi-user.target.wants/pylive-overlay-watch.service)" >&3
    section pylive-status-text
    /run/pylive/pylive status >&3 2>&3
fi

# Extra exercises asked for on the kernel command line: pylive.test=<what>[,<what>...]
#   fill=<MiB>  write that much to the root (a persistent overlay overflows), then show dm status
#   trim=<MiB>  write, delete and fstrim that much; show the thin pool's backing memory each time
#   powercut    sync a token, say "powercut-ready", then write without end (the harness kills QEMU)
#   readbench   read LiveOS/squashfs.img from the (released) CD twice, cold: seconds and bytes
#   watch=<MiB>:<step>:<n>
#               start the watcher as its unit does (ExecStart of the unit the initramfs left), write
#               <MiB> to the root, then <n> steps of <step> MiB, 2.5 s apart (with `overflow`: then
#               write until it fails); report the watcher's state file, its memory and CPU time
#   livesys     what Fedora's livesys service does for a persistent /home (livesys-scripts'
#               livesys-main): loop-mount <rd.live.dir>/home.img from the live medium on /home,
#               remounting the medium rw, unless nopersistenthome; then read and write a token there
#   updateboot=<dir>
#               `pylive update-boot` (--dry-run, then for real) with /boot the directory <dir> of the
#               disk labelled PAIRS (read-only): its kernels and initramfs images are the root's;
#               with `stickfull`, the stick is filled up first (fallocate), and emptied again after;
#               then the stick's boot directory and its free space
#   netbench=<url>
#               download <url> into /run three times with busybox wget and three times with pylive's own
#               client (`/run/pylive/pylive bench-fetch`), alternating: tool, bytes and seconds of each
#   benchcopy   `pylive bench-copy` of the medium's squashfs.img with every copy method, when the
#               root carries the binary in /opt/pylive (make bench)
tests=
read -r cmdline < /proc/cmdline
for word in $cmdline; do
    case "$word" in pylive.test=*) tests="${word#pylive.test=}" ;; esac
done
thin_kib() {
    # memory the thin pool's sparse data and metadata files hold (KiB allocated), and the pool's usage
    printf '%s data-kib=%s meta-kib=%s pool=%s\n' "$1" \
        "$(du -k /run/initramfs/thin-overlay/data 2>/dev/null | cut -f1)" \
        "$(du -k /run/initramfs/thin-overlay/meta 2>/dev/null | cut -f1)" \
        "$(dmsetup status live-overlay-pool 2>/dev/null | tr ' ' '_')" >&3
}
for t in $(echo "$tests" | tr ',' ' '); do
    case "$t" in
    fill=*)
        section fill
        dd if=/dev/zero of=/pylive-fill bs=1M count="${t#fill=}" conv=fsync >&3 2>&1
        printf 'dd-status=%s\n' "$?" >&3
        sync
        rep dmsetup status live-rw
        ;;
    trim=*)
        section trim
        thin_kib before
        dd if=/dev/zero of=/pylive-trim bs=1M count="${t#trim=}" conv=fsync 2>/dev/null
        sync
        thin_kib written
        rm -f /pylive-trim
        sync
        rep fstrim -v /
        sync
        thin_kib trimmed
        ;;
    watch=*)
        section watch
        spec=${t#watch=}
        first=${spec%%:*}; rest=${spec#*:}; step=${rest%%:*}; n=${rest#*:}
        # a login on the serial console, as utmp records it (struct utmp: type 7 USER_PROCESS, pid,
        # line "ttyS0"; 384 bytes): the watcher's wall message must reach that terminal
        { printf '\007\000\000\000\001\000\000\000ttyS0'; head -c 371 /dev/zero; } > /run/utmp
        if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then  # the unit runs it (qemu/sdroot.py)
            wpid=$(systemctl show -p MainPID --value pylive-overlay-watch.service)
            printf 'unit-active=%s\n' "$(systemctl is-active pylive-overlay-watch.service)" >&3
            : > /run/watch.log
        else  # no systemd: start it as the unit would
            exec_start=$(sed -n 's/^ExecStart=//p' /run/systemd/system/pylive-overlay-watch.service)
            # shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
            $exec_start > /run/watch.log 2>&1 &
            wpid=$!
        fi
        sleep 3
        dd if=/dev/zero of=/pylive-watch-0 bs=1M count="$first" conv=fsync 2>/dev/null
        printf 'step=0 dd=%s\n' "$?" >&3
        i=0
        while [ "$i" -lt "$n" ]; do
            i=$((i + 1))
            dd if=/dev/zero of=/pylive-watch-$i bs=1M count="$step" conv=fsync 2>/dev/null
            printf 'step=%s dd=%s status=%s\n' "$i" "$?" "$(/run/pylive/pylive status --json | tr -d ' \n' | \
                sed 's/.*"percent":\([0-9.]*\).*"limited_by":"\([^"]*\)".*/\1:\2/')" >&3
            sleep 2.5
        done
        case ",$tests," in
        *,overflow,*)
            dd if=/dev/zero of=/pylive-watch-over bs=1M count=512 conv=fsync 2>/dev/null
            printf 'overflow-dd=%s\n' "$?" >&3
            sleep 3
            ;;
        esac
        printf 'watcher-alive=%s\n' "$(kill -0 "$wpid" 2>/dev/null && echo yes || echo no)" >&3
        grep -E '^(VmRSS|RssAnon|RssFile|RssShmem):' "/proc/$wpid/status" | tr -s ' \t' ' ' >&3
        # utime + stime (clock ticks) over the process's life, and when it started (ticks after boot)
        printf 'cpu-ticks=%s\n' "$(awk '{ print $14 + $15 }' "/proc/$wpid/stat")" >&3
        printf 'start-ticks=%s\n' "$(awk '{ print $22 }' "/proc/$wpid/stat")" >&3
        printf 'uptime=%s\n' "$(cut -d' ' -f1 /proc/uptime)" >&3
        printf 'watch-log=%s\n' "$(tr '\n' '|' < /run/watch.log)" >&3
        section watch-state
        cat /run/pylive/overlay-state.json >&3 2>&3
        if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
            section journal-warning
            SYSTEMD_COLORS=0 journalctl -u pylive-overlay-watch.service -p warning..warning -o cat --no-pager >&3 2>&3
            section journal-crit
            SYSTEMD_COLORS=0 journalctl -u pylive-overlay-watch.service -p crit..crit -o short-monotonic --no-pager >&3 2>&3
        fi
        ;;
    livesys)
        section livesys
        livedir=LiveOS
        nohome=
        for word in $cmdline; do
            case "$word" in
            rd.live.dir=*|live_dir=*) livedir=${word#*=} ;;
            nopersistenthome) nohome=1 ;;
            esac
        done
        homedev=/run/initramfs/live/$livedir/home.img
        if [ -z "$nohome" ] && [ -e "$homedev" ]; then
            mkdir -p /home
            mount -o remount,rw /run/initramfs/live >&3 2>&1
            loopdev=$(losetup -f) && losetup "$loopdev" "$homedev" >&3 2>&1 && mount "$loopdev" /home >&3 2>&1
            printf 'home-previous=%s\n' "$(cat /home/pylive-home-test 2>/dev/null)" >&3
            echo "home-$token" > /home/pylive-home-test 2>&3 && sync
            printf 'home-written=%s\n' "$(cat /home/pylive-home-test 2>/dev/null)" >&3
            while read -r _dev _mp _rest; do
                [ "$_mp" = /home ] && printf 'home-mount=%s\n' "$_dev" >&3
            done < /proc/mounts
            umount /home >&3 2>&1 && losetup -d "$loopdev" >&3 2>&1
        else
            printf 'home=none\n' >&3
        fi
        ;;
    updateboot=*)
        section update-boot
        mkdir -p /mnt/pairs /boot
        # by its label: which of the two disks is sda is not fixed
        pairs=$(findfs LABEL=PAIRS 2>/dev/null || echo /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_pairs)
        mount -o ro "$pairs" /mnt/pairs >&3 2>&1 && mount -o bind "/mnt/pairs/${t#updateboot=}" /boot >&3 2>&1
        case ",$tests," in
        *,stickfull,*)
            avail=$(df -k /run/initramfs/live | awk 'NR == 2 { print $4 }')
            fallocate -l $(((avail - 1024) * 1024)) /run/initramfs/live/pylive-fill >&3 2>&1
            printf 'filled-kib=%s\n' "$(du -k /run/initramfs/live/pylive-fill | cut -f1)" >&3
            ;;
        esac
        /run/pylive/pylive update-boot --dry-run > /run/ub.out 2>&1
        printf 'dry-run-rc=%s\n' "$?" >&3
        sed 's/^/dry-run: /' /run/ub.out >&3
        /run/pylive/pylive update-boot > /run/ub.out 2> /run/ub.err
        printf 'rc=%s\n' "$?" >&3
        sed 's/^/out: /' /run/ub.out >&3
        sed 's/^/err: /' /run/ub.err >&3
        rm -f /run/initramfs/live/pylive-fill
        sync
        section stick-boot-dir
        # name size sha256, a line each
        for f in /run/initramfs/live/syslinux/*; do
            printf '%s %s %s\n' "${f##*/}" "$(stat -c %s "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)" >&3
        done
        umount /boot /mnt/pairs >&3 2>&1
        ;;
    benchcopy)
        section benchcopy
        if [ -x /opt/pylive/pylive ]; then
            /opt/pylive/pylive bench-copy /run/initramfs/live/LiveOS/squashfs.img --dest-dir /run \
                --methods read,copy,copy1,rw,sendfile --runs 2 >&3 2>&1
            printf 'rc=%s\n' "$?" >&3
        fi
        ;;
    readbench)
        section readbench
        mkdir -p /mnt/medium
        if mount -t iso9660 -o ro /dev/sr0 /mnt/medium 2>&3; then
            for _ in 1 2; do
                sync
                echo 3 > /proc/sys/vm/drop_caches
                read -r t0 _ < /proc/uptime
                dd if=/mnt/medium/LiveOS/squashfs.img of=/dev/null bs=4M 2>/dev/null
                read -r t1 _ < /proc/uptime
                printf 'bytes=%s seconds=%s\n' "$(stat -c %s /mnt/medium/LiveOS/squashfs.img)" \
                    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" >&3
            done
            umount /mnt/medium
        fi
        ;;
    netbench=*)
        # the same URL pylive downloaded, alternately by busybox wget and by pylive's client, into /run
        # (RAM, as pylive's); wget timed around the command, pylive by its own clock (bench-fetch)
        section netbench
        # (without systemd /run is noexec: the binary the boot left runs from /run/pylive's own tmpfs)
        for _ in 1 2 3; do
            rm -f /run/netbench.img
            read -r t0 _ < /proc/uptime
            busybox wget -q -O /run/netbench.img "${t#netbench=}" >&3 2>&1
            rc=$?
            read -r t1 _ < /proc/uptime
            printf 'tool=wget rc=%s bytes=%s seconds=%s\n' "$rc" "$(stat -c %s /run/netbench.img 2>/dev/null)" \
                "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" >&3
            rm -f /run/netbench.img
            out=$(/run/pylive/pylive bench-fetch "${t#netbench=}" --dest-dir /run 2>&1)
            printf 'tool=pylive rc=%s %s\n' "$?" "$(echo "$out" | tail -n 1)" >&3
        done
        ;;
    powercut)
        section powercut
        echo "synced-$token" > /pylive-powercut-synced
        sync
        printf 'synced=synced-%s\n' "$token" >&3
        kmsg "powercut-ready"
        i=0
        while :; do
            i=$((i + 1))
            dd if=/dev/zero of=/pylive-powercut-$((i % 4)) bs=1M count=4 2>/dev/null
        done
        ;;
    esac
done

section uname
rep uname -r

section dmesg
rep dmesg

section end
kmsg "report written, powering off"
# close the report port: the last close waits until the UART has drained
exec 3>&-
power_off
