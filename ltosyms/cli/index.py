"""``ltosyms index``: build the whole index of a vmlinux (and modules) ahead of time."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ltosyms.context.build import IndexBuild, Progress, build_index, default_jobs, dwarf_codec
from ltosyms.errors import InputError
from ltosyms.index.store import cache_location

# A bar for a module of a few CUs would flash by: only images with more CUs get one.
MIN_UNITS_FOR_BAR = 50


@click.command("index")
@click.argument("vmlinux", type=str)
@click.option(
    "--modules",
    "module_folders",
    multiple=True,
    type=click.Path(),
    metavar="DIR",
    help="Index the modules found in DIR too (searched recursively; repeatable; a file works).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help=f"Worker processes (default: the CPUs available, here {default_jobs()}).",
)
@click.option(
    "--cache-dir",
    type=click.Path(),  # a file there is the cache's error (exit 4), not a usage error
    metavar="DIR",
    help="Where the index lives (default $LTOSYMS_CACHE_DIR, $XDG_CACHE_HOME/ltosyms or "
    "~/.cache/ltosyms).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON summary (schema ltosyms.index/1).")
def command(
    vmlinux: str,
    module_folders: tuple[str, ...],
    jobs: int | None,
    cache_dir: str | None,
    as_json: bool,
) -> None:
    """Parse every compilation unit of VMLINUX (and of the modules) into the on-disk index, so
    that every later decode is served from it.

    Interrupting is safe: what was indexed stays, and the next run goes on from there.
    """
    images = [Path(vmlinux), *_module_files(module_folders)]
    location = cache_location(cache_dir)
    codec = dwarf_codec()
    results = []
    failed_images = 0
    for number, image_path in enumerate(images):
        try:
            with _ProgressBar(image_path.name) as progress:
                result = build_index(image_path, location, codec, jobs=jobs, progress=progress)
        except InputError as error:
            if number == 0:
                raise  # the vmlinux itself
            # One unusable file in a module tree does not stop the others.
            click.echo(f"ltosyms: warning: {error}", err=True)
            failed_images += 1
            continue
        results.append(result)
        if not as_json:
            click.echo(_summary(result))
        for cu_offset, reason in result.cu_failed[:5]:
            click.echo(f"ltosyms: CU at {cu_offset:#x} of {image_path} failed: {reason}", err=True)
        if len(result.cu_failed) > 5:
            click.echo(f"ltosyms: ... and {len(result.cu_failed) - 5} more CUs failed", err=True)
    if as_json:
        report = {"schema": "ltosyms.index/1", "images": [_json(r) for r in results]}
        click.echo(json.dumps(report, indent=1))
    if failed_images:
        click.echo(f"ltosyms: {failed_images} module files could not be indexed", err=True)


def _module_files(folders: tuple[str, ...]) -> list[Path]:
    from ltosyms.context import MODULE_SUFFIXES

    found: list[Path] = []
    for folder in map(Path, folders):
        if folder.is_file():
            found.append(folder)
        elif folder.is_dir():
            for root, _dirs, files in os.walk(folder):
                found.extend(
                    Path(root) / name for name in sorted(files) if name.endswith(MODULE_SUFFIXES)
                )
        else:
            raise InputError(f"{folder}: no such file or directory (--modules)")
    return found


def _summary(result: IndexBuild) -> str:
    state = "complete" if result.complete else f"{len(result.cu_failed)} CUs failed"
    return (
        f"{result.image_path}: {result.cu_total} CUs ({result.cu_parsed} parsed, "
        f"{result.cu_reused} already indexed), {state}, {result.size_bytes / 1e6:.1f} MB, "
        f"{result.seconds:.1f} s -> {result.index_path}"
    )


def _json(result: IndexBuild) -> dict[str, Any]:
    return {
        "image": str(result.image_path),
        "build_id": result.build_id,
        "index": str(result.index_path),
        "cu_total": result.cu_total,
        "cu_parsed": result.cu_parsed,
        "cu_reused": result.cu_reused,
        "cu_failed": [{"cu_offset": hex(o), "error": e} for o, e in result.cu_failed],
        "complete": result.complete,
        "size_bytes": result.size_bytes,
        "seconds": round(result.seconds, 3),
    }


class _ProgressBar:
    """A click progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._bar: Any = None
        self._shown = 0

    def __enter__(self) -> Progress | None:
        if not sys.stderr.isatty():
            return None
        return self._update

    def _update(self, done: int, total: int) -> None:
        if total < MIN_UNITS_FOR_BAR:
            return
        if self._bar is None:
            self._bar = click.progressbar(
                length=total, label=self._label, file=sys.stderr, show_pos=True, show_eta=True
            )
            self._bar.__enter__()
        self._bar.update(done - self._shown)
        self._shown = done

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
