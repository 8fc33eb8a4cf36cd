"""``ltosyms decode``: an oops, WARNING or stack dump decoded against its vmlinux."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from ltosyms.cli.cache import cache_options, session_for
from ltosyms.context import ModuleSet
from ltosyms.decode.decode import DecodedReport, Decoder
from ltosyms.errors import InputError, MismatchError, UsageError
from ltosyms.oops.lines import iter_physical_lines
from ltosyms.oops.parse import iter_reports
from ltosyms.render.decode_text import (
    decode_stacktrace_annotations,
    hidden_lines,
    render_log,
    render_log_decode_stacktrace,
    report_annotations,
    report_lines,
)


@contextmanager
def seekable_log(log: str) -> Iterator[IO[bytes]]:
    """The log as a binary file that can be read twice (stdin is spooled to a temp file):
    once to find and decode reports, once to print it with the decoding interleaved."""
    if log == "-":
        import shutil
        import tempfile

        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool)
            spool.seek(0)
            yield spool
        return
    path = Path(log)
    try:
        file = path.open("rb")
    except IsADirectoryError:
        raise InputError(f"{log}: is a directory, not a log") from None
    except OSError as error:
        raise InputError(f"{log}: {error.strerror or error}") from None
    with file:
        yield file


def log_lines(file: IO[bytes]) -> Iterator[str]:
    """Physical lines exactly as the parser numbers them (universal newlines)."""
    file.seek(0)
    return iter_physical_lines(file, report_cuts=False)  # said on the first pass already


def echo_lines(lines: Iterable[str], batch: int = 1024) -> None:
    """Print ``lines`` a batch at a time (one echo per line costs a long log ~10 ms); the log's
    own escapes are kept as they were (``color=True``: click strips nothing)."""
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= batch:
            click.echo("\n".join(chunk), color=True)
            chunk = []
    if chunk:
        click.echo("\n".join(chunk), color=True)


def split_paths(paths: tuple[str, ...]) -> tuple[str | None, str]:
    """``[VMLINUX] [LOG]``: with one path, an ELF file is the vmlinux (log on stdin), anything
    else is the log (the vmlinux is then found from the release or build id it prints)."""
    if len(paths) > 2:
        raise UsageError(f"at most VMLINUX and LOG, got {len(paths)} paths")
    if len(paths) == 2:
        return paths[0], paths[1]
    if not paths:
        return None, "-"
    try:
        with open(paths[0], "rb") as file:
            is_elf = file.read(4) == b"\x7fELF"
    except OSError:
        is_elf = False
    return (paths[0], "-") if is_elf else (None, paths[0])


@click.command("decode")
@click.argument("paths", nargs=-1, metavar="[VMLINUX] [LOG|-]")
@click.option(
    "-r",
    "--release",
    metavar="RELEASE",
    help="Find the vmlinux of this kernel release where distros install debug images "
    "(default: the release the log prints, when no VMLINUX is given).",
)
@click.option(
    "--debuginfod",
    "debuginfod_urls",
    multiple=True,
    metavar="URL",
    help="Fetch the vmlinux and modules by the build ids the log prints (default: "
    "$DEBUGINFOD_URLS). Repeatable.",
)
@click.option(
    "--sysroot",
    type=str,
    default="/",
    show_default=True,
    metavar="DIR",
    help="Look for debug images under DIR instead of / (a mounted system image).",
)
@click.option(
    "--modules",
    "module_folders",
    multiple=True,
    type=str,
    metavar="DIR",
    help="Where module files are (searched recursively; repeatable; a .ko file works too).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output (schema ltosyms.decode/1).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["annotated", "decode-stacktrace"]),
    default="annotated",
    show_default=True,
    help="Text layout: the log annotated, or scripts/decode_stacktrace.sh's line format.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Color the decoded lines (auto: when stdout is a terminal).",
)
@click.option(
    "--reports-only",
    is_flag=True,
    help="Print only the lines of the reports found (oopses, warnings, traces), not the rest "
    "of the log.",
)
@click.option(
    "--brief",
    is_flag=True,
    help="Leave out '? ' entries that are no return address and the call lines, for mail.",
)
@cache_options
def command(
    paths: tuple[str, ...],
    release: str | None,
    debuginfod_urls: tuple[str, ...],
    sysroot: str,
    module_folders: tuple[str, ...],
    as_json: bool,
    output_format: str,
    color: str,
    reports_only: bool,
    brief: bool,
    cache_dir: str | None,
    no_cache: bool,
) -> None:
    """Decode the oopses and stack traces in LOG (default stdin) against VMLINUX.

    Without VMLINUX, the vmlinux is looked up by release (-r, or the one the log prints) where
    distros install debug images, or fetched from debuginfod by the build id the log prints.
    """
    vmlinux, log = split_paths(paths)
    debuginfod = None
    if debuginfod_urls or os.environ.get("DEBUGINFOD_URLS", "").strip():
        # Imported only when used, as below: a decode with a given vmlinux needs neither the
        # HTTP client nor the search of distro paths.
        from ltosyms.debuginfod import DebuginfodConfig

        debuginfod = DebuginfodConfig.from_environment(list(debuginfod_urls) or None)
    use_color = color == "always" or (color == "auto" and sys.stdout.isatty())
    with seekable_log(log) as file, session_for(cache_dir, no_cache) as session:
        reports = list(iter_reports(file))
        module_dirs: tuple[Path, ...] = ()
        if vmlinux is None or (release is not None and len(paths) < 2):
            from ltosyms.decode.sources import find_kernel

            found = find_kernel(reports, release, debuginfod, Path(sysroot))
            click.echo(f"ltosyms: vmlinux {found.vmlinux} ({found.how})", err=True)
            vmlinux, module_dirs = str(found.vmlinux), found.module_dirs
        context = session.open_vmlinux(vmlinux)
        folders = (*module_folders, *(str(d) for d in module_dirs))
        decoder = Decoder(context, ModuleSet.from_paths(folders, session))
        warnings = list(decoder.warnings)
        if debuginfod is not None:
            from ltosyms.decode.sources import fetch_modules

            warnings += fetch_modules(reports, decoder.modules, debuginfod)
        for warning in warnings:
            click.echo(f"ltosyms: warning: {warning}", err=True)
        decoded = [decoder.decode(report) for report in reports]
        shown = _shown_lines(decoded, reports_only, brief)
        if as_json:
            import json

            from ltosyms.render.decode_json import decode_document

            click.echo(json.dumps(decode_document(context.loaded, decoded), indent=1))
        elif output_format == "decode-stacktrace":
            annotations = {}
            for report in decoded:
                annotations.update(decode_stacktrace_annotations(report))
            echo_lines(render_log_decode_stacktrace(log_lines(file), annotations, shown))
        else:
            notes: dict[int, list[str]] = {}
            for report in decoded:
                for number, lines in report_annotations(report, brief).items():
                    notes.setdefault(number, []).extend(lines)
            echo_lines(
                click.style(text, fg="cyan") if is_note and use_color else text
                for text, is_note in render_log(log_lines(file), notes, shown)
            )
    _finish(decoded)


def _shown_lines(
    decoded: list[DecodedReport], reports_only: bool, brief: bool
) -> Callable[[int], bool] | None:
    """Whether an input line is printed (None: all are): the reports' lines with
    ``--reports-only``, not the ``? `` entries that are no return address with ``--brief``."""
    if not reports_only and not brief:
        return None
    inside: set[int] = set()
    hidden: set[int] = set()
    for report in decoded:
        if reports_only:
            inside.update(report_lines(report))
        if brief:
            hidden |= hidden_lines(report)

    def shown(number: int) -> bool:
        return (not reports_only or number in inside) and number not in hidden

    return shown


def _finish(decoded: list[DecodedReport]) -> None:
    for report in decoded:
        for warning in report.warnings:
            click.echo(f"ltosyms: warning: line {report.report.first_line}: {warning}", err=True)
    if any(report.mismatch for report in decoded):
        raise MismatchError("the vmlinux does not match the log (see the warnings above)")
