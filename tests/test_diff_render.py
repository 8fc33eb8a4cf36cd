"""``ltosyms diff`` output: text, JSON schema, bloat-o-meter layout, self-contained HTML."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from conftest import SAMPLES

from ltosyms.cli import cli
from ltosyms.diff import DiffReport, diff_images
from ltosyms.render.diff_html import render_html

BASE = str(SAMPLES / "vmlinux-gcc")
NEW = str(SAMPLES / "vmlinux-gcc-lto")
CLASSES = {
    "unchanged",
    "grown",
    "shrunk",
    "renamed",
    "specialized",
    "split",
    "dropped_inlined",
    "dropped_removed",
    "folded",
    "outlined",
    "new",
}
VOID_ELEMENTS = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["diff", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def report() -> DiffReport:
    return diff_images(BASE, NEW)


def test_text_report_starts_with_the_summary() -> None:
    code, out, _err = run(BASE, NEW)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "ltosyms diff"
    assert lines.index("Summary") < lines.index("Functions by class, largest effects first")
    assert any(line.startswith("== dropped_inlined: 7 functions") for line in lines)
    dropped = next(line for line in lines if "widget_get_id" in line and "inlined" in line)
    assert "inlined 4x into" in dropped


def test_limit_zero_lists_every_entry_as_all_does() -> None:
    # --limit is shared with kallsyms-check, where 0 means all; diff keeps --all too.
    code, every, _err = run(BASE, NEW, "--limit", "0")
    assert code == 0
    # The BASE and NEW lines say how long DWARF took to read: not compared.
    assert every.splitlines()[3:] == run(BASE, NEW, "--all")[1].splitlines()[3:]
    one = run(BASE, NEW, "--limit", "1")[1]
    assert len(one.splitlines()) < len(every.splitlines())


def test_json_schema() -> None:
    code, out, _err = run(BASE, NEW, "--json")
    assert code == 0
    document = json.loads(out)
    assert document["schema"] == "ltosyms.diff/2"
    assert all({"name", "base_size", "new_size"} <= set(s) for s in document["sections"])
    assert document["functions"]
    for entry in document["functions"]:
        assert entry["class"] in CLASSES
        assert {"base", "new", "inlined_count_base", "inlined_count_new"} <= set(entry)
        assert entry["base"] is not None or entry["new"] is not None
        for side in ("base", "new"):
            if entry[side] is not None:
                assert entry[side]["names"] and isinstance(entry[side]["size"], int)
        if entry["class"] in ("new", "outlined"):
            assert entry["base"] is None
        elif entry["class"] != "folded":
            assert entry["base"] is not None
    dropped = [e for e in document["functions"] if e["class"] == "dropped_inlined"]
    assert all(e["new"] is None and e["inlined_count_new"] > 0 for e in dropped)


def test_bloat_o_meter_layout_keeps_duplicates_apart() -> None:
    code, out, _err = run(
        str(SAMPLES / "vmlinux-clang"),
        str(SAMPLES / "vmlinux-clang-lto"),
        "--format",
        "bloat-o-meter",
    )
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(
        r"add/remove: \d+/\d+ grow/shrink: \d+/\d+ up/down: \d+/-\d+ \(-?\d+\)", lines[0]
    )
    assert lines[1].split() == ["Function", "old", "new", "delta"]
    assert re.fullmatch(r"Total: Before=\d+, After=\d+, chg [+-]\d+\.\d\d%", lines[-1])
    rows = [line.split() for line in lines[2:-1]]
    # A fifth column, the file, only where names repeat (same-named statics).
    names = Counter(row[0] for row in rows)
    assert all(len(row) == (5 if names[row[0]] > 1 else 4) for row in rows)
    assert all(int(row[3]) != 0 for row in rows)
    deltas = [int(row[3]) for row in rows]
    assert deltas == sorted(deltas, reverse=True)
    before, after = map(int, re.findall(r"=(\d+)", lines[-1]))
    up_down = int(re.search(r"\((-?\d+)\)", lines[0]).group(1))  # type: ignore[union-attr]
    assert after - before == up_down == sum(deltas)
    # bloat-o-meter would strip `.N` and sum three name_show into one row; no row here merges
    # them (two are renamed name_show.N at their old sizes: no row at all).
    assert not any(row[0] == "name_show" for row in rows)


def test_json_and_bloat_exclude_each_other() -> None:
    code, _out, err = run(BASE, NEW, "--json", "--format", "bloat-o-meter")
    assert code == 2 and "exclude each other" in err


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    code, _out, err = run(BASE, str(tmp_path / "nothing"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def test_html_is_well_formed_and_self_contained(report: DiffReport) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    checker = _Balance()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(link|img|iframe|object|embed)\b|\bsrc=|url\(|@import", page)
    # One inline script, and a policy that forbids the browser any request.
    assert len(re.findall(r"<script>", page)) == 1
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)
    assert len(svgs) >= 4
    for svg in svgs:
        ElementTree.fromstring(svg)  # each chart is well-formed XML
    assert "widget_get_id" in page


def test_cli_writes_html(tmp_path: Path) -> None:
    target = tmp_path / "diff.html"
    code, out, _err = run(BASE, NEW, "--html", str(target), "--no-dwarf")
    assert code == 0 and out.startswith("ltosyms diff")
    assert "DWARF not read" in target.read_text()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_html_renders_in_headless_chromium(report: DiffReport, tmp_path: Path) -> None:
    page = tmp_path / "diff.html"
    page.write_text(render_html(report))
    shot = tmp_path / "diff.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # charts and text, not a blank page
