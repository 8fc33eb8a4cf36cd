"""``ltosyms diff``: what LTO (or any rebuild) dropped, specialized, renamed, inlined, and what it
cost, per section class, function, object, directory and MAINTAINERS subsystem."""

from __future__ import annotations

import gc
from pathlib import Path

import click

from ltosyms.cli.options import SHOW_ALL, cache_options, format_option, json_option, limit_option
from ltosyms.cli.output import echo_lines, keep_until_exit
from ltosyms.diff import diff_censuses, image_censuses
from ltosyms.errors import InputError, UsageError
from ltosyms.index.store import cache_location
from ltosyms.render.diff_bloat import Selection


@click.command("diff")
@click.argument("base", type=str)
@click.argument("new", type=str)
@json_option("ltosyms.diff/2")
@format_option(
    ("text", "bloat-o-meter", "csv"),
    help="Text report, scripts/bloat-o-meter's table with LTO-aware matching, or CSV "
    "(one row per function or object).",
)
@click.option(
    "-c",
    "selection",
    flag_value=Selection.CATEGORIES.value,
    help="bloat-o-meter: one table each for functions, data and read-only data.",
)
@click.option(
    "-d", "selection", flag_value=Selection.DATA.value, help="bloat-o-meter: data symbols only."
)
@click.option(
    "-t", "selection", flag_value=Selection.TEXT.value, help="bloat-o-meter: functions only."
)
@click.option(
    "--html",
    "html_path",
    type=str,
    metavar="FILE",
    help="Also write a self-contained HTML report (charts, sortable and filterable tables).",
)
@click.option(
    "--dwarf/--no-dwarf",
    "dwarf",
    default=None,
    help="Read DWARF (units, directories, inlining) or symbols and sizes only. Default: read "
    "it, except for --format bloat-o-meter without --html.",
)
@click.option(
    "--maintainers",
    "maintainers_path",
    type=str,
    metavar="FILE",
    help="The kernel's MAINTAINERS file: add a rollup per subsystem.",
)
@limit_option("Entries shown per class in the text report")
@click.option("--all", "show_all", is_flag=True, help="Show every entry of every class.")
@click.option(
    "--depth",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Directory depth of the per-directory rollup (the HTML page has every depth).",
)
@cache_options
def command(
    *,
    base: str,
    new: str,
    as_json: bool,
    output_format: str,
    selection: str | None,
    html_path: str | None,
    dwarf: bool | None,
    maintainers_path: str | None,
    limit: int,
    show_all: bool,
    depth: int,
    cache_dir: str | None,
    no_cache: bool,
) -> None:
    """Compare two vmlinux files (or two modules), typically BASE without LTO and NEW with LTO
    of the same source and config: section sizes like size -A, every function and object
    matched by identity (base name, suffix grammar, DWARF unit) and classified as unchanged,
    grown, shrunk, renamed, specialized, split, dropped_inlined, dropped_removed, folded,
    outlined or new.

    What the diff needs of each image (its census) is kept in the image's index: the next
    diff of the image (or one after ltosyms index) reads neither its DWARF nor its symbols."""
    if as_json and output_format != "text":
        raise UsageError(f"--json and --format {output_format} exclude each other")
    if selection is not None and output_format != "bloat-o-meter":
        raise UsageError("-c, -d and -t select bloat-o-meter tables: add --format bloat-o-meter")
    if no_cache and cache_dir is not None:
        raise UsageError("--cache-dir and --no-cache contradict each other")
    use_dwarf = dwarf if dwarf is not None else output_format != "bloat-o-meter" or bool(html_path)
    # No cyclic collection for the rest of the process: the records the command makes hold no
    # cycles and live until it ends, and a collection would walk all of them again (the one
    # that follows re-enabling it walks every record made meanwhile: 20 ms of an indexed diff).
    gc.disable()
    maintainers = None
    if maintainers_path:
        from ltosyms.diff.maintainers import read_maintainers

        maintainers = read_maintainers(maintainers_path)
    # diff_images() in two steps, so that the censuses, like the report, are kept until the
    # process ends (keep_until_exit): freeing them as diff_images returned cost 18 ms of an
    # indexed diff.
    censuses = image_censuses(
        base, new, use_dwarf=use_dwarf, cache=None if no_cache else cache_location(cache_dir)
    )
    keep_until_exit(censuses)
    report = diff_censuses(
        *censuses, directory_depth=depth, maintainers=maintainers, dwarf_requested=use_dwarf
    )
    keep_until_exit(report)
    # Each renderer is imported when asked for: a diff of indexed images takes under a second,
    # and the HTML page's (its script, its charts) is a tenth of that.
    if html_path:
        from ltosyms.render.diff_html import render_html

        try:
            Path(html_path).write_text(render_html(report), encoding="utf-8")
        except OSError as error:
            raise InputError(f"{html_path}: cannot write: {error.strerror or error}") from None
    if as_json:
        import json

        from ltosyms.render.diff_json import report_json

        click.echo(json.dumps(report_json(report), indent=1))
    elif output_format == "bloat-o-meter":
        from ltosyms.render.diff_bloat import render_bloat

        echo_lines(render_bloat(report, Selection(selection or Selection.ALL.value)))
    elif output_format == "csv":
        from ltosyms.render.diff_csv import render_csv

        for line in render_csv(report, maintainers):
            click.echo(line, nl=False)
    else:
        from ltosyms.render.diff_text import render_text

        shown = None if show_all or limit == SHOW_ALL else limit
        echo_lines(render_text(report, limit=shown))
