"""``ltosyms decode``: an oops, WARNING or stack dump decoded against its vmlinux."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import click

from ltosyms.cli.cache import session_for
from ltosyms.cli.options import cache_options, format_option, json_option, modules_option
from ltosyms.cli.output import echo_lines
from ltosyms.context import ModuleSet
from ltosyms.decode.decode import DecodedReport, Decoder
from ltosyms.errors import InputError, MismatchError, UsageError
from ltosyms.limits import MAX_REPORT_CHARS
from ltosyms.oops import LogStretch, Report, iter_log_stretches
from ltosyms.render.decode_text import (
    MadeLines,
    decode_stacktrace_annotations,
    hidden_lines,
    render_log,
    render_log_decode_stacktrace,
    report_annotations,
    report_lines,
)

if TYPE_CHECKING:
    from ltosyms.debuginfod import DebuginfodConfig
    from ltosyms.elf.kernel import LoadedImage


@contextmanager
def open_log(log: str) -> Iterator[IO[bytes]]:
    """The log as a binary stream, read once from start to end: a file, a pipe, or stdin
    (``-``), which is never copied anywhere."""
    if log == "-":
        yield sys.stdin.buffer
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
@modules_option("Where module files are")
@json_option("ltosyms.decode/1")
@format_option(
    ("annotated", "decode-stacktrace"),
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
    with open_log(log) as file, session_for(cache_dir, no_cache) as session:
        # One pass over the log: each stretch's reports are decoded, then its lines printed,
        # so memory follows the largest report and a pipe or stdin is read as it comes.
        stretches: Iterator[LogStretch] = iter_log_stretches(file)
        module_dirs: tuple[Path, ...] = ()
        if vmlinux is None or (release is not None and len(paths) < 2):
            from ltosyms.decode.sources import find_kernel

            head = _until_identity(stretches)
            reports = [report for stretch in head for report in stretch.reports]
            found = find_kernel(reports, release, debuginfod, Path(sysroot))
            click.echo(f"ltosyms: vmlinux {found.vmlinux} ({found.how})", err=True)
            vmlinux, module_dirs = str(found.vmlinux), found.module_dirs
            stretches = itertools.chain(head, stretches)
        context = session.open_vmlinux(vmlinux)
        folders = (*module_folders, *(str(d) for d in module_dirs))
        decoding = _Decoding(Decoder(context, ModuleSet.from_paths(folders, session)), debuginfod)
        for warning in decoding.decoder.warnings:
            click.echo(f"ltosyms: warning: {warning}", err=True)
        if as_json:
            write_json_document(
                context.loaded,
                (decoding.decode(report) for stretch in stretches for report in stretch.reports),
            )
        elif output_format == "decode-stacktrace":
            echo_lines(
                _decode_stacktrace_lines(stretches, decoding, reports_only, brief), color=True
            )
        else:
            note = _cyan if use_color else None
            for printed in _annotated_stretches(stretches, decoding, reports_only, brief, note):
                if printed:
                    click.echo("\n".join(printed), color=True)
    decoding.finish()


def _until_identity(stretches: Iterator[LogStretch]) -> list[LogStretch]:
    """The first stretches of the log, up to the one by which it has printed a kernel release
    and a build id (what finds its vmlinux), or to MAX_REPORT_CHARS characters of lines: a
    log that names its kernel does so in its first report."""
    from ltosyms.decode.sources import log_identity

    head: list[LogStretch] = []
    release = build_id = None
    characters = 0
    for stretch in stretches:
        head.append(stretch)
        characters += sum(len(line) + 1 for line in stretch.lines)
        printed_release, printed_build_id = log_identity(stretch.reports)
        release, build_id = release or printed_release, build_id or printed_build_id
        if (release is not None and build_id is not None) or characters >= MAX_REPORT_CHARS:
            break
    return head


class _Decoding:
    """Decodes the reports as they come, keeping of each only what is said at the end."""

    def __init__(self, decoder: Decoder, debuginfod: DebuginfodConfig | None) -> None:
        self.decoder = decoder
        self.debuginfod = debuginfod
        self.fetched_modules: set[str] = set()  # tried on debuginfod, found or not
        self.late_warnings: list[str] = []
        self.mismatch = False

    def decode(self, report: Report) -> DecodedReport:
        if self.debuginfod is not None:
            from ltosyms.decode.sources import fetch_modules

            for warning in fetch_modules(
                [report], self.decoder.modules, self.debuginfod, self.fetched_modules
            ):
                click.echo(f"ltosyms: warning: {warning}", err=True)
        decoded = self.decoder.decode(report)
        self.late_warnings.extend(f"line {report.first_line}: {w}" for w in decoded.warnings)
        self.mismatch = self.mismatch or decoded.mismatch
        return decoded

    def finish(self) -> None:
        for warning in self.late_warnings:
            click.echo(f"ltosyms: warning: {warning}", err=True)
        if self.mismatch:
            raise MismatchError("the vmlinux does not match the log (see the warnings above)")


_Note = TypeVar("_Note")


def _stretch_notes(notes: dict[int, _Note], stretch: LogStretch) -> dict[int, _Note]:
    """The notes of the stretch's lines, taken out of ``notes`` and numbered from 1 as the
    renderers number the lines they are given."""
    first, end = stretch.first_line, stretch.first_line + len(stretch.lines)
    numbers = [number for number in notes if first <= number < end]
    return {number - first + 1: notes.pop(number) for number in numbers}


def _cyan(text: str) -> str:
    return click.style(text, fg="cyan")


def _annotated_stretches(
    stretches: Iterable[LogStretch],
    decoding: _Decoding,
    reports_only: bool,
    brief: bool,
    note: Callable[[str], str] | None,
) -> Iterator[list[str]]:
    """Each stretch's lines as printed, with the decoding of its reports after the lines they
    belong to (``note`` marks those, for a terminal)."""
    notes: dict[int, list[str]] = {}
    made = MadeLines()
    for stretch in stretches:
        decoded = [decoding.decode(report) for report in stretch.reports]
        for report in decoded:
            for number, lines in report_annotations(report, brief, made).items():
                notes.setdefault(number, []).extend(lines)
        shown = _shown_lines(decoded, stretch.first_line, reports_only, brief)
        yield render_log(stretch.lines, _stretch_notes(notes, stretch), shown, note)


def _decode_stacktrace_lines(
    stretches: Iterable[LogStretch], decoding: _Decoding, reports_only: bool, brief: bool
) -> Iterator[str]:
    annotations: dict[int, str] = {}
    for stretch in stretches:
        decoded = [decoding.decode(report) for report in stretch.reports]
        for report in decoded:
            annotations.update(decode_stacktrace_annotations(report))
        shown = _shown_lines(decoded, stretch.first_line, reports_only, brief)
        yield from render_log_decode_stacktrace(
            stretch.lines, _stretch_notes(annotations, stretch), shown
        )


def _shown_lines(
    decoded: list[DecodedReport], first_line: int, reports_only: bool, brief: bool
) -> Callable[[int], bool] | None:
    """Whether a line of a stretch that starts at input line ``first_line`` is printed (None:
    all are; numbered from 1 as the renderers number it): the reports' lines with
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
        line = first_line + number - 1
        return (not reports_only or line in inside) and line not in hidden

    return shown


def write_json_document(vmlinux: LoadedImage, reports: Iterable[DecodedReport]) -> None:
    """Print ``decode_document(vmlinux, reports)`` as ``json.dumps(..., indent=1)`` prints it,
    a report at a time: the document's last member is the array of reports."""
    import json

    from ltosyms.render.decode_json import decode_document, report_json

    empty = json.dumps(decode_document(vmlinux, []), indent=1)
    before, array, after = empty.rpartition('"reports": []')
    assert array and after == "\n}", "the reports are the document's last member"
    opened = False
    for report in reports:
        item = json.dumps(report_json(report), indent=1).replace("\n", "\n  ")
        click.echo(f",\n  {item}" if opened else f'{before}"reports": [\n  {item}', nl=False)
        opened = True
    click.echo(f"\n ]{after}" if opened else empty)
