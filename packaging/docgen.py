"""pylive(8) and pylive's bash completion, made from what `pylive --help` and README.md are made of.

The sources are the argparse parser (pylive/__main__.py), the option table (pylive/options.py, which
also writes README's table), the exit codes (pylive/errors.py) and README's opening paragraphs: the
man page cannot say something that --help and the README do not, and the completion offers exactly
the subcommands and options the parser takes.

    python3 packaging/docgen.py man README.md > pylive.8
    python3 packaging/docgen.py bash > pylive
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.fspath(Path(__file__).resolve().parents[1]))

from pylive import __version__, errors  # noqa: E402 (after the path above)
from pylive.__main__ import _parser  # noqa: E402
from pylive.options import OPTIONS  # noqa: E402

# What each exit code means, by its name in pylive/errors.py; a code without a line here stops the build.
EXIT_STATUS = {
    "EXIT_OK": "success: the live root is set up, the command line parsed, the plan made, the medium intact",
    "EXIT_FAILED": "failure: the boot stopped (with one line saying why), a plan that would stop, "
                   "a damaged medium",
    "EXIT_BAD_CMDLINE": "a kernel command line or argument pylive cannot use; check-media: "
                        "not an ISO image, or unreadable",
    "EXIT_NOT_LIVE": "root= does not name a live medium: nothing to do (the dracut hooks step aside)",
    "EXIT_NO_CHECKSUM": "check-media: the image carries no implanted MD5 (implantisomd5 was not run)",
}
# Metavars whose values are paths: the completion offers file names (directories for DIR).
PATH_METAVARS = {"FILE": "-f", "PATH": "-f", "DIR": "-d"}


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]  # ("--kmsg", "--no-kmsg"); a positional: ()
    metavar: str  # "" when it takes no value
    help: str


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str
    options: tuple[Option, ...]
    positionals: tuple[Option, ...]


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def groups(parser: argparse.ArgumentParser) -> dict[str, tuple[str, ...]]:
    """Subcommands that have verbs of their own (`pylive overlay inspect`): name → verbs."""
    sub = _subparsers(parser)
    assert sub is not None
    return {name: tuple(verbs.choices) for name, p in sub.choices.items() if (verbs := _subparsers(p)) is not None}


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> tuple[Command, ...]:
    """The subcommands and their options as --help lists them (options hidden from --help left out); a
    subcommand with verbs gives one command per verb ("overlay inspect")."""
    sub = _subparsers(parser)
    assert sub is not None
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    out: list[Command] = []
    for verb, p in sub.choices.items():
        if _subparsers(p) is not None:
            out += commands(p, f"{prefix}{verb} ")
            continue
        name = prefix + verb
        options: list[Option] = []
        positionals: list[Option] = []
        for a in p._actions:
            if a.help == argparse.SUPPRESS or isinstance(a, argparse._HelpAction):
                continue
            if not a.help:
                raise ValueError(f"pylive {name}: {a.option_strings or a.dest} has no help text")
            if "%(" in a.help:
                raise ValueError(f"pylive {name}: {a.dest}: %-formatting in help is not rendered here")
            metavar = "" if a.nargs == 0 else str(a.metavar or a.dest.upper())
            (options if a.option_strings else positionals).append(Option(tuple(a.option_strings), metavar, a.help))
        out.append(Command(name, helps[verb], p.description or "", tuple(options),
                           tuple(positionals)))
    return tuple(out)


# roff


def roff_escape(text: str) -> str:
    """Plain text for a roff line: backslashes doubled as \\e, characters beyond ASCII as \\[uXXXX]."""
    text = text.replace("\\", "\\e")
    return "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)


def roff_code(text: str) -> str:
    """A literal (an option, a path): bold, its hyphens minus signs so that it can be copied."""
    return "\\fB" + roff_escape(text).replace("-", "\\-") + "\\fR"


def roff_inline(markdown: str) -> str:
    """README's inline markdown in roff: `code` bold, *emphasis* italic, the rest escaped."""
    out = []
    for i, part in enumerate(re.split(r"`([^`]*)`", markdown)):
        if i % 2:
            out.append(roff_code(part))
        else:
            out.append(re.sub(r"\*([^*\s][^*]*)\*", r"\\fI\1\\fR", roff_escape(part)))
    return "".join(out)


def sentence(text: str) -> str:
    return text if text.endswith(".") else text + "."


def roff_line(text: str) -> str:
    """A text line that roff cannot take for a request (one that starts with . or ')."""
    return "\\&" + text if text[:1] in (".", "'") else text


def readme_description(readme: str) -> list[str]:
    """README's paragraphs before its first section, as roff: paragraphs and bulleted lists."""
    m = re.search(r"(?s)\A# pylive\n(.*?)\n## ", readme)
    if not m:
        raise ValueError("README.md: no text between '# pylive' and its first '## ' section")
    out: list[str] = []
    for block in m[1].strip().split("\n\n"):
        text, *items = re.split(r"(?m)^- ", block)
        out.append(".PP")
        if text.strip():
            out.append(roff_line(roff_inline(" ".join(text.split()))))
        for item in items:
            out += [".IP \\(bu 2", roff_line(roff_inline(" ".join(item.split())))]
    return out


def _option_head(o: Option, sep: str = ", ") -> str:
    names = sep.join(roff_code(n) for n in o.names)
    value = f"\\fI{roff_escape(o.metavar)}\\fR" if o.metavar else ""
    return " ".join(x for x in (names, value) if x)


def _synopsis(c: Command) -> str:
    words = [f"[{_option_head(o, ' | ')}]" for o in c.options]
    words += [f"\\fI{roff_escape(o.metavar)}\\fR" for o in c.positionals]
    return " ".join([roff_code("pylive"), roff_code(c.name), *words])


def _kernel_options() -> list[str]:
    out = []
    for o in OPTIONS:
        default = "none" if o.default is None else ("on" if o.default else "off") if isinstance(o.default, bool) \
            else str(o.default)
        facts = [f"default: {roff_escape(default)}"]
        if o.ng_name:
            facts.append(f"dracut-ng: {roff_code(o.ng_name)}")
        if o.old_names:
            facts.append("old names: " + ", ".join(roff_code(n) for n in o.old_names))
        text = f"{roff_inline(o.help)} ({'; '.join(facts)})."
        if o.note:
            text += f" pylive: {roff_inline(o.note)}."
        out += [".TP", roff_code(o.name), roff_line(text)]
    return out


def _exit_status() -> list[str]:
    out = []
    for name, code in sorted(((n, v) for n, v in vars(errors).items() if n.startswith("EXIT_")), key=lambda x: x[1]):
        if name not in EXIT_STATUS:
            raise ValueError(f"pylive/errors.py: {name} has no line in EXIT_STATUS ({__file__})")
        out += [".TP", f"\\fB{code}\\fR", roff_line(roff_escape(EXIT_STATUS[name]))]
    return out


def manpage(parser: argparse.ArgumentParser, readme: str, date: str = "") -> str:
    """pylive(8) in roff (man macros)."""
    cmds = commands(parser)
    lines = [
        f'.\\" Generated by packaging/docgen.py from pylive {__version__}: edit the sources, not this file.',
        f'.TH PYLIVE 8 "{date}" "pylive {__version__}" "System Administration"',
        ".SH NAME",
        f"pylive \\- {roff_escape(parser.description or '')}",
        ".SH SYNOPSIS",
    ]
    for c in cmds:
        lines += [".PP", _synopsis(c)]
    lines += [".SH DESCRIPTION", *readme_description(readme)]
    lines += [
        ".PP",
        "In an initramfs, the dracut module " + roff_code("pylive") + " runs " + roff_code("pylive cmdline-hook")
        + " and " + roff_code("pylive run") + " in place of " + roff_code("dmsquash-live") + "; on a running "
        "system, " + roff_code("pylive explain") + " shows what a kernel command line would do and "
        + roff_code("pylive check-media") + " checks a medium.",
        ".SH COMMANDS",
    ]
    for c in cmds:
        lines += [".TP", roff_code(c.name), roff_line(roff_escape(sentence(c.help)))]
        if c.description:
            lines += [".IP", roff_line(roff_escape(c.description))]
        if c.positionals or c.options:
            lines.append(".RS")
            for o in (*c.positionals, *c.options):
                lines += [".TP", _option_head(o), roff_line(roff_escape(sentence(o.help)))]
            lines.append(".RE")
    lines += [".SH OPTIONS", ".TP", roff_code("-h") + ", " + roff_code("--help"),
              "Show the options of pylive or of a command.", ".TP", roff_code("--version"), "Show pylive's version."]
    lines += [
        ".SH KERNEL COMMAND LINE",
        "The whole command line is " + roff_code("/etc/cmdline.d/*.conf") + ", then " + roff_code("/etc/cmdline")
        + ", then " + roff_code("/proc/cmdline") + ", as dracut assembles it; for each option the last one wins. "
        "Booleans are false for " + roff_code("0") + ", " + roff_code("no") + " and " + roff_code("off")
        + ", true otherwise.",
        *_kernel_options(),
        ".TP", roff_code("ro") + ", " + roff_code("rw"),
        "How the live medium is mounted (default: ro; the last one wins).",
        ".SH EXIT STATUS", *_exit_status(),
        ".SH FILES",
        ".TP", roff_code("/usr/lib/pylive/"),
        "The Nuitka standalone dist without the network code: the binary and the extension modules it "
        "loads; the dracut module copies it into an initramfs without module " + roff_code("pylive-net") + ".",
        ".TP", roff_code("/usr/lib/pylive-net/"),
        "The same with the network code (root=live:http://… and the other network roots, TLS): the pylive "
        "command, and what the dracut module copies into an initramfs with module " + roff_code("pylive-net") + ".",
        ".TP", roff_code("/usr/lib/dracut/modules.d/90pylive/"), "The dracut module.",
        ".TP", roff_code("/usr/lib/dracut/dracut.conf.d/50-pylive.conf"),
        "Switches the module on for every initramfs (package " + roff_code("pylive-dracut-conf")
        + "); a file of the same name in " + roff_code("/etc/dracut.conf.d/") + " takes its place.",
        ".TP", roff_code("/run/initramfs/pylive.json"),
        "What the boot did: the mode, the devices and every step run, for installers and bug reports.",
        ".SH SEE ALSO",
        ".BR dracut (8),",
        ".BR dracut.conf (5),",
        ".BR dracut.cmdline (7),",
        ".BR checkisomd5 (1),",
        ".BR losetup (8),",
        ".BR dmsetup (8)",
    ]
    return "\n".join(lines) + "\n"


# bash completion


def _words(words: list[str]) -> str:
    return " ".join(words)


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A completion function for bash (no bash-completion helpers needed): subcommands, their options,
    and file names where an option or argument takes a path."""
    cmds = commands(parser)
    nested = groups(parser)
    cases = [f"        {name})\n            opts=\"{_words([*verbs, '--help'])}\"\n            ;;"
             for name, verbs in nested.items()]
    for c in cmds:
        value_cases = []
        for kind in ("-f", "-d"):
            names = [n for o in c.options if PATH_METAVARS.get(o.metavar) == kind for n in o.names]
            if names:
                value_cases.append(f"                {'|'.join(names)}) _pylive_files {kind}; return ;;")
        other = [n for o in c.options if o.metavar and o.metavar not in PATH_METAVARS for n in o.names]
        if other:
            value_cases.append(f"                {'|'.join(other)}) return ;;")
        options = [n for o in c.options for n in o.names] + ["--help"]
        positional = next((PATH_METAVARS.get(o.metavar, "") for o in c.positionals), "")
        cases.append(f'        "{c.name}")' if " " in c.name else f"        {c.name})")
        if value_cases:
            cases += ["            case $prev in", *value_cases, "            esac"]
        cases.append(f'            opts="{_words(options)}"')
        if positional:
            cases.append(f'            [[ $cur == -* ]] || {{ _pylive_files {positional}; return; }}')
        cases.append("            ;;")
    return f"""# bash completion for pylive(8)
# Generated by packaging/docgen.py from pylive {__version__}'s argparse parser: edit the parser, not this file.

_pylive_files() {{
    # $1: -f (files and directories) or -d (directories)
    compopt -o filenames 2> /dev/null
    mapfile -t COMPREPLY < <(compgen "$1" -- "$cur")
}}

_pylive() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD - 1]}}
    local cmd="" opts i
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${{COMP_WORDS[i]}} != -* ]]; then
            if [[ -z $cmd ]]; then
                cmd=${{COMP_WORDS[i]}}
                [[ " {_words(list(nested))} " == *" $cmd "* ]] || break
            else
                cmd="$cmd ${{COMP_WORDS[i]}}"
                break
            fi
        fi
    done
    case $cmd in
        "")
            opts="{_words(list(dict.fromkeys(c.name.split()[0] for c in cmds)) + ["--help", "--version"])}"
            ;;
{chr(10).join(cases)}
        *)
            return
            ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}}
complete -F _pylive pylive
"""


def main(argv: list[str]) -> int:
    if argv[:1] == ["man"] and len(argv) == 2:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds: dpkg sets it from debian/changelog
        date = time.strftime("%Y-%m-%d", time.gmtime(int(epoch))) if epoch else ""
        sys.stdout.write(manpage(_parser(), Path(argv[1]).read_text(encoding="utf-8"), date))
    elif argv == ["bash"]:
        sys.stdout.write(bash_completion(_parser()))
    else:
        print("usage: docgen.py man README.md | docgen.py bash", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
