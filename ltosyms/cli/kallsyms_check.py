"""``ltosyms kallsyms-check``: what kallsyms' name filtering does to a vmlinux; dump checks."""

from __future__ import annotations

import json

import click

from ltosyms.cli.options import json_option, limit_option
from ltosyms.elf.kernel import load_vmlinux
from ltosyms.errors import CheckFailed, UsageError
from ltosyms.kallsyms_check import (
    DumpKind,
    FailCondition,
    check_kallsyms,
    dwarf_files_of,
    read_dump,
)
from ltosyms.names.kallsyms import CLEANUP_RULES
from ltosyms.render.kallsyms_check_json import check_json
from ltosyms.render.kallsyms_check_text import check_text

_RULES = ("auto", *(rule.name for rule in CLEANUP_RULES))
_CONDITIONS = tuple(condition.value for condition in FailCondition)


@click.command("kallsyms-check")
@click.argument("vmlinux", type=str)
@click.option(
    "--rule",
    type=click.Choice(_RULES),
    default="auto",
    show_default=True,
    help="Cleanup rule to report in detail; auto reads kernel version and LTO from VMLINUX.",
)
@click.option(
    "--kallsyms",
    "kallsyms_path",
    type=str,
    metavar="FILE",
    help="A copy of /proc/kallsyms to verify against VMLINUX.",
)
@click.option(
    "--system-map",
    "system_map_path",
    type=str,
    metavar="FILE",
    help="A System.map to verify against VMLINUX.",
)
@json_option("ltosyms.kallsyms-check/1")
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(_CONDITIONS),
    multiple=True,
    help="Exit 1 when this holds: unresolvable/ambiguous (a function name under the rule), "
    "mismatch/hidden (the dump). Repeatable.",
)
@limit_option("Groups, names and dump differences listed per section in text output")
@click.option(
    "--files/--no-files",
    default=True,
    show_default=True,
    help="Name the compilation unit of each function in an ambiguous group (reads DWARF).",
)
def command(
    *,
    vmlinux: str,
    rule: str,
    kallsyms_path: str | None,
    system_map_path: str | None,
    as_json: bool,
    fail_on: tuple[str, ...],
    limit: int,
    files: bool,
) -> None:
    """Show which symbols kallsyms keeps in VMLINUX, which printed names become ambiguous or
    lose their .cold/.part suffix under each cleanup rule, and whether a /proc/kallsyms copy or
    System.map belongs to VMLINUX (KASLR offset, missing, extra and moved symbols).

    Exit status: 0, 1 when a --fail-on condition holds, 2 for bad input."""
    if kallsyms_path and system_map_path:
        raise UsageError("--kallsyms and --system-map exclude each other")
    about_dump = [
        c for c in fail_on if c in (FailCondition.MISMATCH.value, FailCondition.HIDDEN.value)
    ]
    if about_dump and not (kallsyms_path or system_map_path):
        # A gate that cannot fail is no gate: without a dump there is nothing to mismatch.
        raise UsageError(
            f"--fail-on {about_dump[0]} checks a dump: give --kallsyms FILE or --system-map FILE"
        )
    loaded = load_vmlinux(vmlinux)
    dump = None
    if kallsyms_path:
        dump = read_dump(kallsyms_path, DumpKind.KALLSYMS)
    elif system_map_path:
        dump = read_dump(system_map_path, DumpKind.SYSTEM_MAP)
    files_of = dwarf_files_of(loaded.image) if files else None
    check = check_kallsyms(loaded, rule=rule, dump=dump, files_of=files_of)
    conditions = [FailCondition(value) for value in fail_on]
    if as_json:
        click.echo(json.dumps(check_json(check, conditions), indent=1))
    else:
        for line in check_text(check, limit=limit, fail_on=conditions):
            click.echo(line)
    held = [c.value for c in conditions if check.holds(c)]
    if held:
        raise CheckFailed(f"kallsyms-check: --fail-on condition holds: {', '.join(held)}")
