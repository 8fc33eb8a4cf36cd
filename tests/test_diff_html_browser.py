"""The diff page in a real browser: headless Chromium loads it offline (a dead proxy, and the
page's policy forbids requests anyway), and its tables sort and filter.

The page keeps its view in the URL fragment and applies a fragment on load through its own
controls (typing into the filter box, choosing in a drop-down, clicking a column heading), so
each view is one ``chromium --dump-dom`` of ``page.html#...``; the test reads the rows the
script drew. Without Chromium the tests skip; ``LTOSYMS_REQUIRE_BROWSER=1`` (set by ``.ci/run``)
makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT

from ltosyms.diff import ChangeClass
from ltosyms.diff.maintainers import read_maintainers
from ltosyms.diff.model import DiffReport
from ltosyms.render.diff_html import PAGE_ROWS, render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        reason = "chromium not installed (apt-get install chromium)"
        if os.environ.get("LTOSYMS_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; LTOSYMS_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    return CHROMIUM


@dataclass
class Table:
    attributes: dict[str, str]
    headings: list[tuple[str, str]] = field(default_factory=list)  # (data-key, class)
    rows: list[list[str]] = field(default_factory=list)

    def column(self, key: str) -> list[str]:
        position = [heading for heading, _css in self.headings].index(key)
        return [row[position] for row in self.rows]


class _Tables(HTMLParser):
    """Every ``table.rows`` of a dumped DOM: headings, drawn rows, data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, Table] = {}
        self.ready = False
        self._table: Table | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "html":
            self.ready = values.get("data-ready") == "1"
        elif tag == "table" and "rows" in values.get("class", "").split():
            self._table = self.tables[values["id"]] = Table(values)
        elif self._table is not None and tag == "th":
            self._table.headings.append((values.get("data-key", ""), values.get("class", "")))
        elif self._table is not None and tag == "tr" and self._table.headings:
            self._table.rows.append([])
        elif self._table is not None and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "td" and self._table is not None and self._cell is not None:
            self._table.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def number(text: str) -> int | None:
    cleaned = text.replace(",", "").replace("\u2212", "-").replace("+", "")
    return int(cleaned) if cleaned else None


@pytest.fixture(scope="module")
def page(
    kernel_diff: Callable[..., DiffReport], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, DiffReport]:
    maintainers = read_maintainers(PROJECT / "testdata" / "maintainers" / "MAINTAINERS")
    report = kernel_diff("clang-nolto", "clang-thinlto", maintainers=maintainers)
    path = tmp_path_factory.mktemp("page") / "diff.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path, report


def view(chromium: str, page: Path, fragment: str = "") -> tuple[_Tables, str]:
    """The DOM after the page's script ran, and the browser's log."""
    profile = page.parent / "profile"
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            # Offline: every request would go to a proxy that is not there.
            "--proxy-server=127.0.0.1:9",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=30000",
            "--dump-dom",
            page.as_uri() + (f"#{fragment}" if fragment else ""),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    tables = _Tables()
    tables.feed(result.stdout)
    return tables, result.stderr


def page_rows(page: Path, table: str) -> list[list[Any]]:
    """The rows the page carries for ``table`` (its embedded JSON)."""
    text = page.read_text()
    match = re.search(
        rf'<script type="application/json" id="{table}-data">(.*?)</script>', text, re.DOTALL
    )
    assert match is not None
    rows: list[list[Any]] = json.loads(match.group(1))["rows"]
    return rows


def test_page_loads_offline_and_draws_the_largest_changes_first(
    chromium: str, page: tuple[Path, DiffReport]
) -> None:
    path, report = page
    tables, log = view(chromium, path)
    assert tables.ready
    assert "Uncaught" not in log and "Refused to" not in log  # no script error, no request
    changes = tables.tables["changes"]
    assert int(changes.attributes["data-matching"]) == len(report.changes)
    assert len(changes.rows) == int(changes.attributes["data-shown"]) == PAGE_ROWS
    expected = [change.display_name for change in report.changes[:PAGE_ROWS]]
    assert changes.column("name") == expected
    assert {"dirs", "subsystems", "inlines"} <= set(tables.tables)
    assert len(tables.tables["subsystems"].rows) == len(report.subsystems)


@pytest.mark.parametrize(
    ("key", "direction"),
    [("delta", "asc"), ("delta", "desc"), ("new_size", "desc"), ("name", "asc")],
)
def test_columns_sort(
    chromium: str, page: tuple[Path, DiffReport], key: str, direction: str
) -> None:
    path, report = page
    tables, _log = view(chromium, path, f"changes.sort={key}&changes.dir={direction}")
    changes = tables.tables["changes"]
    assert dict(changes.headings)[key] == direction
    assert int(changes.attributes["data-matching"]) == len(report.changes)
    shown = changes.column(key)
    if key == "name":
        names = [name.lower() for name in shown]
        assert names == sorted(names)
        assert names[0] == min(change.display_name.lower() for change in report.changes)
        return
    values = [number(value) for value in shown]
    present = [value for value in values if value is not None]
    assert present == sorted(present, reverse=direction == "desc")
    # Rows without a value (no NEW symbol) come last, whichever the direction.
    assert values[: len(present)] == present
    sizes = [
        change.delta if key == "delta" else change.new_size
        for change in report.changes
        if key == "delta" or change.new is not None
    ]
    assert present[0] == (min(sizes) if direction == "asc" else max(sizes))


@pytest.mark.parametrize("query", ["put_page", "drivers/tty/", "made local"])
def test_filter_box_keeps_the_rows_holding_the_text(
    chromium: str, page: tuple[Path, DiffReport], query: str
) -> None:
    path, _report = page
    tables, _log = view(chromium, path, f"changes.q={query}")
    changes = tables.tables["changes"]
    expected = [row for row in page_rows(path, "changes") if query in "\x01".join(map(str, row))]
    assert expected
    assert int(changes.attributes["data-matching"]) == len(expected)
    assert len(changes.rows) == min(len(expected), PAGE_ROWS)
    for row in changes.rows:
        assert any(query in cell for cell in row)


def test_class_choice_sort_and_filter_combine(chromium: str, page: tuple[Path, DiffReport]) -> None:
    path, report = page
    tables, _log = view(
        chromium, path, "changes.class=renamed&changes.q=tty&changes.sort=delta&changes.dir=desc"
    )
    changes = tables.tables["changes"]
    expected = [
        change
        for change in report.of_class(ChangeClass.RENAMED)
        if "tty" in change.display_name
        or "tty" in (change.source or "")
        or any("tty" in name for g in (change.base, change.new) if g for name in g.names)
    ]
    assert int(changes.attributes["data-matching"]) == len(expected) > 0
    assert set(changes.column("class")) == {"renamed"}
    deltas = [number(value) for value in changes.column("delta")]
    assert deltas == sorted(deltas, reverse=True)  # type: ignore[type-var]


@pytest.mark.parametrize("depth", [1, 3])
def test_directories_at_the_chosen_depth(
    chromium: str, page: tuple[Path, DiffReport], depth: int
) -> None:
    path, report = page
    tables, _log = view(chromium, path, f"dirs.depth={depth}")
    directories = tables.tables["dirs"]
    expected = [row for row in report.directory_tree if row.depth == depth]
    assert len(directories.rows) == len(expected)
    assert set(directories.column("directory")) == {r.directory for r in expected}
    # At any depth the rows add up to every change.
    assert sum(number(v) or 0 for v in directories.column("base_size")) == sum(
        change.base_size for change in report.changes
    )
    deltas = [number(value) for value in directories.column("delta")]
    assert deltas == sorted(deltas, reverse=True)  # type: ignore[type-var]
