#!/bin/sh
# Sourced by pylive-generator and parse-pylive.sh. Each start of the pylive binary costs about as
# much as the rest of the cmdline step under emulation (make bench), so the plain case, where the
# shell alone can tell that pylive boots this command line, goes without `pylive cmdline-hook`:
# the binary then starts once per boot, for the run, which reads and checks every option itself
# and stops with its one line naming a bad one. Only the shell's own tools here (the generator
# runs before anything else), and nothing is left set but pylive_root.

# pylive_plain_root [ROOT]: returns 0 and sets pylive_root to the root= value when the command
# line as pylive reads it (/etc/cmdline.d/*.conf, /etc/cmdline, /proc/cmdline) says
# root=live:<value> exactly once, for a local medium, and the shell cannot split or read it
# otherwise than pylive does: nothing but printable ASCII, spaces and tabs (no quote, no other
# separator), the value made of letters, digits and ._:=/,+@%-\ only (a label escaped as udev
# does: CDLABEL=A\x20B). It returns 1 for anything else, and the caller asks `pylive cmdline-hook`:
# a network image (the hook asks for the network), rd.break (a debugging boot keeps the path that
# logs the hook's own answer), any other root= form.
# ROOT (tests) is a directory to read the three sources under instead of /.
pylive_plain_root() {
    pylive_root=
    _pl_line=
    for _pl_f in "${1-}"/etc/cmdline.d/*.conf "${1-}"/etc/cmdline "${1-}"/proc/cmdline; do
        [ -f "$_pl_f" ] || continue
        while IFS= read -r _pl_l || [ -n "$_pl_l" ]; do
            _pl_line="$_pl_line $_pl_l"
        done < "$_pl_f"
    done
    case $_pl_line in
        *[![:print:][:blank:]]* | *[\"\']*) _pl_line= ;;
    esac
    _pl_n=0
    case $- in *f*) _pl_glob= ;; *) _pl_glob=1 ;; esac
    set -f
    # shellcheck disable=SC2086 # split into words, as the kernel does for these characters
    for _pl_w in $_pl_line; do
        case $_pl_w in
            root=*)
                pylive_root=${_pl_w#root=}
                _pl_n=$((_pl_n + 1))
                ;;
            rd.break | rd.break=* | rdbreak | rdbreak=*) _pl_n=2 ;;
        esac
    done
    [ -n "$_pl_glob" ] && set +f
    _pl_v=${pylive_root#live:}
    case $_pl_n:$pylive_root:$_pl_v in
        1:live:?*:*)
            case $_pl_v in
                *[!A-Za-z0-9._:=/,+@%\\-]* | http://* | https://* | ftp://* | tftp://* | nfs* | *://*) ;;
                *)
                    unset _pl_line _pl_f _pl_l _pl_n _pl_glob _pl_w _pl_v
                    return 0
                    ;;
            esac
            ;;
    esac
    pylive_root=
    unset _pl_line _pl_f _pl_l _pl_n _pl_glob _pl_w _pl_v
    return 1
}
