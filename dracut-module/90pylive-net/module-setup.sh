#!/bin/bash
# dracut module "pylive-net": live images over the network (root=live:http(s)://, ftp://, tftp://,
# nfs://) for the "pylive" module. Like dracut's livenet, it is included only when asked for
# (`dracut --add pylive-net`, or add_dracutmodules+=" pylive-net "), so a plain live initramfs does
# not grow. The network is brought up by dracut's own "network" module (dracut-network on Debian:
# network-legacy, systemd-networkd or network-manager, whichever the build has); without it this
# module cannot be included and dracut says so in one line at build time.

# called by dracut
check() {
    [[ $hostonly ]] && return 1
    # module pylive installs this dist instead of its base one when this module is in the initramfs
    require_binaries "${PYLIVE_NET_DIST:-/usr/lib/pylive-net}/pylive" || return 1
    return 255
}

# called by dracut
depends() {
    echo pylive network
    return 0
}

# called by dracut
installkernel() {
    # the kernel's NFS client for root=live:nfs:// (mount.nfs is used when the build host has it)
    hostonly='' instmods nfs nfsv3 nfsv4 sunrpc
}

# called by dracut
install() {
    # pylive's binary with the network code (and TLS, and OpenSSL's hashes: rd.pylive.checksum at
    # ~9x the speed of Python's own) is installed by module pylive, which asks whether this one is in.
    inst_multiple -o mount.nfs
    # the CA bundle https:// certificates are verified against (pylive/net/stream.py: CA_BUNDLES, the
    # first that exists); without one, an https:// root stops with a line saying so
    inst_multiple -o /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt \
        /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem /etc/ssl/ca-bundle.pem /etc/ssl/cert.pem
    # name resolution for a server given by name (glibc loads these with dlopen)
    inst_libdir_file "libnss_dns.so.*" "libnss_files.so.*" "libresolv.so.*"
}
