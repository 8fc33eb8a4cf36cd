"""``ltosyms diff --maintainers``: the kernel's MAINTAINERS format and get_maintainer.pl's choice
of the most specific section, against get_maintainer.pl's own answers (testdata/maintainers)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PROJECT, Corpus

from ltosyms.cli import cli
from ltosyms.diff.maintainers import parse_maintainers, read_maintainers
from ltosyms.diff.model import DiffReport
from ltosyms.diff.rollup import UNMAINTAINED, subsystem_totals
from ltosyms.errors import InputError

EXCERPT = PROJECT / "testdata" / "maintainers" / "MAINTAINERS"
ANSWERS = PROJECT / "testdata" / "maintainers" / "get_maintainer.txt"


def answers() -> list[tuple[str, str]]:
    rows = [line.split("|", 1) for line in ANSWERS.read_text().splitlines() if line]
    return [(path, section) for path, section in rows]


@pytest.mark.parametrize(("path", "section"), answers())
def test_most_specific_section_is_get_maintainers_first(path: str, section: str) -> None:
    assert read_maintainers(EXCERPT).subsystem_of(path) == section


def sections(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())


def test_ranking_rules() -> None:
    maintainers = parse_maintainers(
        sections(
            """
            ALL OF NET
            F: net/
            X: net/ipv6/

            NET CORE FILES ONLY
            F: net/core/*

            DIRECTORY WITHOUT ITS SLASH
            F: drivers/tty

            ANYTHING NAMED WIDGET
            N: widget

            ALSO NET CORE
            F: net/core/*
            """
        ).splitlines()
    )
    assert maintainers.subsystem_of("net/ipv4/tcp.c") == "ALL OF NET"
    assert maintainers.subsystem_of("net/ipv6/route.c") is None  # excluded, nothing else
    # Depth 3 ("net/core/" plus one for a file pattern) beats depth 1; the first of a tie wins.
    assert maintainers.subsystem_of("net/core/dev.c") == "NET CORE FILES ONLY"
    assert maintainers.subsystem_of("net/core/sub/x.c") == "ALL OF NET"  # * stays in its dir
    assert maintainers.subsystem_of("drivers/tty/vt/vt.c") == "DIRECTORY WITHOUT ITS SLASH"
    assert maintainers.subsystem_of("lib/widget.c") == "ANYTHING NAMED WIDGET"
    assert maintainers.subsystem_of("lib/gadget.c") is None


def test_a_file_without_sections_is_an_input_error(tmp_path: Path) -> None:
    empty = tmp_path / "MAINTAINERS"
    empty.write_text("Just a title\n\nand prose\n")
    with pytest.raises(InputError, match="no MAINTAINERS section"):
        read_maintainers(empty)
    with pytest.raises(InputError, match="No such file"):
        read_maintainers(tmp_path / "absent")


def test_subsystem_rollup_of_a_real_diff(corpus: Corpus) -> None:
    base = corpus.kernel_vmlinux("clang-nolto")
    new = corpus.kernel_vmlinux("clang-thinlto")
    result = CliRunner().invoke(
        cli, ["diff", str(base), str(new), "--format", "csv", "--maintainers", str(EXCERPT)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    maintainers = read_maintainers(EXCERPT)
    assert rows
    for row in rows:
        unit = row["file"] if "/" in row["file"] else ""
        if unit:
            assert row["subsystem"] == (maintainers.subsystem_of(unit) or "")
    zstd = [row for row in rows if "zstd" in row["file"]]
    assert zstd and {row["subsystem"] for row in zstd} == {"ZSTD"}
    text = CliRunner().invoke(
        cli, ["diff", str(base), str(new), "--maintainers", str(EXCERPT), "--limit", "200"]
    )
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    start = lines.index(
        "MAINTAINERS subsystems (most specific section of each unit), largest changes first"
    )
    listed = {}
    for line in lines[start + 2 :]:
        if not line.startswith("  ") or line.startswith("  ..."):
            break
        name = line[2:50].rstrip()
        listed[name] = int(line[50:].split()[2].replace(",", ""))
    # Every section's delta is the sum over the CSV rows of its files.
    for name, delta in listed.items():
        if name in (UNMAINTAINED, "(no DWARF unit)"):
            continue
        assert delta == sum(int(row["delta"]) for row in rows if row["subsystem"] == name), name


def test_rollup_covers_every_change(kernel_diff: Callable[..., DiffReport]) -> None:
    report = kernel_diff("clang-nolto", "clang-thinlto")
    rows = subsystem_totals(report.changes, read_maintainers(EXCERPT))
    assert sum(row.base_size for row in rows) == sum(c.base_size for c in report.changes)
    assert sum(row.new_size for row in rows) == sum(c.new_size for c in report.changes)
    assert {row.directory for row in rows} >= {"THE REST", "ZSTD", "MEMORY MANAGEMENT"}
