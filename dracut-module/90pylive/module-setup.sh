#!/bin/bash
# dracut module "pylive": boots live media (root=live:…) with the pylive binary instead of
# dmsquash-live. The binary is a Nuitka standalone dist: no Python in the initramfs.

# Where the dists are on the build host (overridable for builds from a source tree): the base one,
# built without the network code, and the full one that module pylive-net asks for.
pylive_dist() {
    echo "${PYLIVE_DIST:-/usr/lib/pylive}"
}
pylive_net_dist() {
    echo "${PYLIVE_NET_DIST:-/usr/lib/pylive-net}"
}

# called by dracut
check() {
    # A live image is generic media; a host-only one makes little sense (as dmsquash-live).
    [[ $hostonly ]] && return 1
    require_binaries "$(pylive_dist)/pylive" || return 1
    return 255
}

# called by dracut
depends() {
    # dm: the device-mapper udev rules (/dev/mapper names) and modules.
    echo dm
    return 0
}

# called by dracut
installkernel() {
    # vfat (persistence on FAT sticks) mounts only with its code page and I/O charset modules
    # (the kernel's FAT defaults: codepage 437, iocharset ascii on Debian and Fedora; utf8 on request)
    hostonly='' instmods squashfs loop iso9660 overlay erofs ext4 vfat nls_cp437 nls_ascii nls_iso8859-1 nls_utf8 \
        dm_mod dm_snapshot dm_thin_pool
}

# called by dracut
install() {
    local dist f lib
    if dracut_module_included "dmsquash-live"; then
        dfatal "pylive: the modules 'pylive' and 'dmsquash-live' both boot live media; include only one (e.g. omit_dracutmodules+=\" dmsquash-live \")"
        exit 1
    fi
    # The whole dist: the binary and the extension modules it dlopen()s (invisible to ldd). With
    # module pylive-net the full one (the network code, TLS and OpenSSL's hashes: ~2 MB more binary
    # and ~5.9 MB of libraries), else the base one, which refuses a network root in one line.
    if dracut_module_included "pylive-net"; then
        dist=$(pylive_net_dist)
    else
        dist=$(pylive_dist)
    fi
    while IFS= read -r -d '' f; do
        inst_simple "$f" "/usr/lib/pylive/${f#"$dist"/}"
        # System libraries the dist links against (libc, libm, libz, …): those inside the dist
        # are already there through $ORIGIN.
        if [[ -x $f ]] || [[ $f == *.so* ]]; then
            while IFS= read -r lib; do
                [[ $lib == "$dist"/* ]] || inst_library "$lib"
            done < <(ldd "$f" 2> /dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p')
        fi
    done < <(find "$dist"/ -type f -print0)  # the trailing / follows a dist that is a symlink
    # pyudev dlopen()s libudev through ctypes: ldd cannot see it.
    inst_libdir_file "libudev.so.1"
    inst_multiple modprobe
    inst_script "$moddir/pylive.sh" /sbin/pylive
    inst_script "$moddir/pylive-root.sh" /sbin/pylive-root
    inst_simple "$moddir/pylive-lib.sh" /lib/pylive-lib.sh
    inst_hook cmdline 30 "$moddir/parse-pylive.sh"
    if dracut_module_included "systemd-initrd"; then
        inst_script "$moddir/pylive-generator.sh" "$systemdutildir"/system-generators/pylive-generator
        inst_simple "$moddir/pylive.service" "$systemdsystemunitdir"/pylive.service
    else
        dracut_need_initqueue
    fi
}
