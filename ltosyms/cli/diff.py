"""``ltosyms diff``: what LTO (or any rebuild) dropped, specialized, renamed, inlined, and what it
cost, per section class, function, object and directory."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ltosyms.diff import diff_images
from ltosyms.errors import InputError, UsageError
from ltosyms.render.diff_bloat import render_bloat
from ltosyms.render.diff_html import render_html
from ltosyms.render.diff_json import report_json
from ltosyms.render.diff_text import render_text


@click.command("diff")
@click.argument("base", type=str)
@click.argument("new", type=str)
@click.option("--json", "as_json", is_flag=True, help="JSON output (schema ltosyms.diff/1).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "bloat-o-meter"]),
    default="text",
    show_default=True,
    help="Text report, or scripts/bloat-o-meter's table with LTO-aware matching.",
)
@click.option(
    "--html",
    "html_path",
    type=str,
    metavar="FILE",
    help="Also write a self-contained HTML report with charts to FILE.",
)
@click.option(
    "--no-dwarf",
    is_flag=True,
    help="Symbols and sizes only: skip the DWARF pass (units, directories, inlining).",
)
@click.option(
    "--limit",
    default=20,
    show_default=True,
    metavar="N",
    type=click.IntRange(min=1),
    help="Entries shown per class in the text report.",
)
@click.option("--all", "show_all", is_flag=True, help="Show every entry of every class.")
@click.option(
    "--depth",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Directory depth of the per-directory rollup.",
)
def command(
    *,
    base: str,
    new: str,
    as_json: bool,
    output_format: str,
    html_path: str | None,
    no_dwarf: bool,
    limit: int,
    show_all: bool,
    depth: int,
) -> None:
    """Compare two vmlinux files, typically BASE without LTO and NEW with LTO of the same source
    and config: section sizes like size -A, every function and object matched by identity
    (base name, suffix grammar, DWARF unit) and classified as unchanged, grown, shrunk, renamed,
    specialized, dropped_inlined, dropped_removed or new."""
    if as_json and output_format != "text":
        raise UsageError("--json and --format bloat-o-meter exclude each other")
    report = diff_images(base, new, use_dwarf=not no_dwarf, directory_depth=depth)
    if html_path:
        try:
            Path(html_path).write_text(render_html(report), encoding="utf-8")
        except OSError as error:
            raise InputError(f"{html_path}: cannot write: {error.strerror or error}") from None
    if as_json:
        click.echo(json.dumps(report_json(report), indent=1))
    elif output_format == "bloat-o-meter":
        for line in render_bloat(report):
            click.echo(line)
    else:
        for line in render_text(report, limit=None if show_all else limit):
            click.echo(line)
