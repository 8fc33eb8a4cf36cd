"""``ltosyms kallsyms-check`` as users and CI run it: output, JSON schema, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import Corpus

from ltosyms.cli import cli


def run(*args: str | Path, files: bool = False) -> Result:
    # Source files need DWARF; only the test about them pays for it.
    options = [] if files else ["--no-files"]
    return CliRunner().invoke(cli, ["kallsyms-check", *map(str, args), *options])


def as_json(result: Result) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture(scope="module")
def thinlto(corpus: Corpus) -> Path:
    return corpus.kernel_vmlinux("clang-thinlto")


@pytest.fixture(scope="module")
def thinlto_json(thinlto: Path) -> dict[str, Any]:
    result = run(thinlto, "--json")
    assert result.exit_code == 0, result.output
    return as_json(result)


def test_json_document(thinlto_json: dict[str, Any]) -> None:
    document = thinlto_json
    assert document["schema"] == "ltosyms.kallsyms-check/1"
    assert document["rule"] == "llvm-suffix"
    assert document["kept_count"] == document["kallsyms_num_syms"]
    assert document["dump"] is None
    assert [r["rule"] for r in document["rules"]] == [
        "none",
        "gcc-lto-numeric",
        "cfi-hash",
        "first-dot",
        "llvm-suffix",
    ]
    groups = document["ambiguous"]
    assert len(groups) == document["summary"]["ambiguous"]
    for group in groups:
        assert set(group) >= {"printed_name", "symbols", "size_separates"}
        assert len({s["address"] for s in group["symbols"]}) > 1
        for symbol in group["symbols"]:
            assert set(symbol) >= {"name", "address", "kallsyms_size", "file"}
            assert symbol["name"].split(".llvm.")[0] == group["printed_name"]
            int(symbol["address"], 16)
        sizes = [s["kallsyms_size"] for s in {s["address"]: s for s in group["symbols"]}.values()]
        assert group["size_separates"] == (len(set(sizes)) == len(sizes))


def test_text_report(thinlto: Path, thinlto_json: dict[str, Any]) -> None:
    result = run(thinlto, "--limit", "5", files=True)
    assert result.exit_code == 0, result.output
    assert "cleanup rule llvm-suffix (auto:" in result.stdout
    assert f"kallsyms keeps {thinlto_json['kept_count']} symbols" in result.stdout
    first = thinlto_json["ambiguous"][0]
    assert f"\n  {first['printed_name']}: " in result.stdout
    assert f"... {len(thinlto_json['ambiguous']) - 5} more" in result.stdout
    # With DWARF each copy of a function group names its compilation unit.
    assert thinlto_json["ambiguous"][0]["symbols"][0]["file"] is None  # --no-files
    member_lines = [line for line in result.stdout.splitlines() if line.startswith("    ffff")]
    assert member_lines and all(line.rstrip().endswith(".c") for line in member_lines[:4])


def test_fail_on_unresolvable_follows_the_groups(
    thinlto: Path, thinlto_json: dict[str, Any]
) -> None:
    unresolvable_function = any(
        not g["size_separates"] and g["text"] for g in thinlto_json["ambiguous"]
    )
    result = run(thinlto, "--fail-on", "unresolvable", "--json")
    assert result.exit_code == (1 if unresolvable_function else 0)
    assert as_json(result)["failed"] == (["unresolvable"] if unresolvable_function else [])
    # A condition about a dump without a dump is a usage error, not a gate that passes.
    for condition in ("mismatch", "hidden"):
        result = run(thinlto, "--fail-on", condition)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and "--kallsyms FILE" in result.stderr


def test_wrong_kernel_dump_fails_the_gate(corpus: Corpus, thinlto: Path) -> None:
    dump = corpus.debian / "kallsyms" / "proc-kallsyms.txt"
    gated = run(thinlto, "--kallsyms", dump, "--fail-on", "mismatch")
    assert gated.exit_code == 1
    assert "MISMATCH" in gated.stdout and "another build" in gated.stdout
    assert "mismatch" in gated.stderr
    assert run(thinlto, "--kallsyms", dump).exit_code == 0  # a report, not a gate


def test_matching_system_map_passes_the_gate(corpus: Corpus, thinlto: Path) -> None:
    system_map = corpus.kernels / "clang-thinlto" / "System.map"
    result = run(thinlto, "--system-map", system_map, "--fail-on", "mismatch", "--json")
    assert result.exit_code == 0, result.output
    dump = as_json(result)["dump"]
    assert dump["verdict"] == "match" and dump["kaslr_offset"] == "0x0"
    assert dump["missing"] == dump["extra"] == dump["moved"] == []


def test_hidden_dump_gate(corpus: Corpus, thinlto: Path) -> None:
    # Debian's first 2000 lines, addresses hidden: another kernel, and hidden.
    dump = corpus.debian / "kallsyms" / "proc-kallsyms-kptr_restrict2-first2000.txt"
    result = run(thinlto, "--kallsyms", dump, "--fail-on", "hidden", "--json")
    assert result.exit_code == 1
    document = as_json(result)["dump"]
    assert document["addresses_hidden"] is True and document["verdict"] == "mismatch"
    # Before, a hidden dump of another kernel passed this gate.
    assert run(thinlto, "--kallsyms", dump, "--fail-on", "mismatch").exit_code == 1


def test_text_explains_columns_and_markers(corpus: Corpus, thinlto: Path) -> None:
    dump = corpus.debian / "kallsyms" / "proc-kallsyms.txt"
    result = run(thinlto, "--kallsyms", dump, "--limit", "3")
    assert result.exit_code == 0
    out = result.stdout
    assert "'=' when another" in out and "/kallsyms size as an oops prints it" in out
    assert "missing: a vmlinux symbol the dump does not list" in out
    assert "moved: listed elsewhere than" in out
    # A member line carries the marker the legend explains.
    assert re.search(r"^    ffff[0-9a-f]{12} /0x[0-9a-f]+ += ", out, flags=re.MULTILINE)


@pytest.mark.parametrize(
    "extra_args",
    [
        ["--kallsyms", "{map}", "--system-map", "{map}"],  # exclusive options
        ["--kallsyms", "{missing}"],  # no such file
        ["--kallsyms", "{garbage}"],  # no symbol line
        ["--rule", "newest"],  # unknown rule
        ["--fail-on", "anything"],
    ],
)
def test_usage_and_input_errors_exit_2(
    corpus: Corpus, thinlto: Path, tmp_path: Path, extra_args: list[str]
) -> None:
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("no symbols here\n")
    paths = {
        "map": str(corpus.kernels / "clang-thinlto" / "System.map"),
        "missing": str(tmp_path / "absent"),
        "garbage": str(garbage),
    }
    result = run(thinlto, *(arg.format(**paths) for arg in extra_args))
    assert result.exit_code == 2, result.output


def test_not_a_vmlinux_exits_2(corpus: Corpus) -> None:
    result = run(corpus.kernels / "clang-thinlto" / "System.map")
    assert result.exit_code == 2
    assert "not an ELF file" in result.stderr
