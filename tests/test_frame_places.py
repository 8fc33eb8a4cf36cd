"""Frames in a developer's terms: module places by section, function pointers on the stack.

A module has no link address anyone else knows (ltosyms lays its sections out from
``MODULE_BASE``): no decode output, text or JSON, may print one. A ``? f+size/size`` entry is
the start of the function after ``f``, a pointer left on the stack: it names that function,
checked against the symbol tables as ``nm`` (vmlinux) and pyelftools (modules) read them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import Corpus, elffile

from ltosyms.cli import cli
from ltosyms.elf.image import open_image


def _run(arguments: list[str]) -> str:
    result = CliRunner().invoke(cli, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@cache
def _decoded(vmlinux: Path, log: Path, modules: Path, as_json: bool) -> str:
    arguments = ["decode", str(vmlinux), str(log), "--modules", str(modules), "--no-cache"]
    return _run([*arguments, "--json"] if as_json else arguments)


def _private_ranges(modules: Path) -> list[tuple[int, int]]:
    """The link addresses ltosyms gives the sections of each module in ``modules``."""
    ranges = []
    for path in sorted(modules.glob("*.ko")):
        with open_image(path) as image:
            placed = [s for s in image.sections if s.is_alloc and s.link_address]
            ranges.append((min(s.link_address for s in placed), max(s.end_address for s in placed)))
    return ranges


# A number in a decode's annotation that could be an address: not an offset (`+0x..`), a
# size (`/0x..`, `size 0x..`) or an immediate (`$0x..`).
_NUMBER = re.compile(r"(?<![+/$\w-])(?<!size )(?:0x([0-9a-f]+)|([0-9a-f]{16}))\b")
# A frame of a module as the log prints it.
_MODULE_FRAME = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+ \[\w+")


def _addresses_in_json(value: Any, key: str = "") -> Iterator[tuple[str, int]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _addresses_in_json(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _addresses_in_json(item, key)
    elif isinstance(value, str) and ("address" in key or key == "call_site"):
        yield key, int(value, 16)


LOGS = ("clang-thinlto", "arm64-clang-thinlto", "debian")


@pytest.mark.parametrize("name", LOGS)
def test_no_output_shows_the_private_module_layout(corpus: Corpus, name: str) -> None:
    if name == "debian":
        vmlinux, modules = corpus.debian_vmlinux(), corpus.debian / "modules"
        log = corpus.debian / "logs" / "console-sysrq.log"
    else:
        vmlinux, modules = corpus.kernel_vmlinux(name), corpus.kernels / name
        log = modules / "console.log"
    ranges = _private_ranges(modules)

    def private(address: int) -> bool:
        return any(low <= address < high for low, high in ranges)

    log_lines = log.read_text(errors="replace").splitlines()
    printed = set(log_lines)
    text = _decoded(vmlinux, log, modules, False)
    annotations = [line for line in text.splitlines() if line not in printed]
    found = [
        line
        for line in annotations
        if any(private(int(m.group(1) or m.group(2), 16)) for m in _NUMBER.finditer(line))
    ]
    assert found == []

    document = json.loads(_decoded(vmlinux, log, modules, True))
    module_frames = [
        frame
        for report in document["reports"]
        for frame in report["frames"]
        if frame["module"] is not None and frame["resolved"] is not None
    ]
    # One per module frame the log prints (28, 38 and 25), every one resolved.
    assert len(module_frames) == sum(1 for line in log_lines if _MODULE_FRAME.search(line))
    assert (
        len(module_frames) == {"clang-thinlto": 28, "arm64-clang-thinlto": 38, "debian": 25}[name]
    )
    assert [(k, a) for k, a in _addresses_in_json(document) if private(a)] == []
    # Every resolved module frame says where it is instead.
    for frame in module_frames:
        resolved = frame["resolved"]
        if not resolved["ambiguous"]:
            assert resolved["section"] is not None and resolved["section_offset"] is not None


def test_module_frames_by_section_with_runtime_address(corpus: Corpus) -> None:
    # tracegen's oops: `RIP: 0010:tg_store+0x5/0x10 [tracegen]` and "Code: Unable to access
    # opcode bytes at 0xffffffffc03a3fdb", 42 bytes before the IP: tg_store+0x5 ran at
    # 0xffffffffc03a4005; objdump -t tracegen.ko puts tg_store at .text+0x0, tg_oops_write at
    # .text+0x10 and tg_thread_fn at .text+0xa0.
    document = json.loads(
        _decoded(
            corpus.debian_vmlinux(),
            corpus.debian / "logs" / "console-sysrq.log",
            corpus.debian / "modules",
            True,
        )
    )
    seen: dict[tuple[str, int, bool], set[tuple[str, int, str | None]]] = {}
    for report in document["reports"]:
        for frame in report["frames"]:
            resolved = frame["resolved"]
            if frame["module"] == "tracegen" and resolved is not None:
                seen.setdefault((frame["symbol"], frame["offset"], frame["exact_ip"]), set()).add(
                    (resolved["section"], resolved["section_offset"], resolved["runtime_address"])
                )
    assert seen[("tg_store", 0x5, True)] == {(".text", 0x5, "0xffffffffc03a4005")}
    # The other frames of that report: the same section, so the same start.
    assert seen[("tg_oops_write", 0x17, False)] == {(".text", 0x27, "0xffffffffc03a4027")}
    # No report of the tg_thread_fn frames gives a runtime address in tracegen's .text.
    assert seen[("tg_thread_fn", 0x13, False)] == {(".text", 0xB3, None)}


@cache
def _nm_functions(vmlinux: Path) -> dict[int, set[str]]:
    output = subprocess.run(
        ["nm", "--defined-only", str(vmlinux)], capture_output=True, text=True, check=True
    ).stdout
    names: dict[int, set[str]] = {}
    for line in output.splitlines():
        address, kind, name = line.split()[:3]
        if kind in "Tt":
            names.setdefault(int(address, 16), set()).add(name)
    return names


def _ko_functions(module: Path) -> dict[tuple[str, int], set[str]]:
    elf = elffile(module)
    names: dict[tuple[str, int], set[str]] = {}
    for symbol in elf.get_section_by_name(".symtab").iter_symbols():
        if symbol["st_info"]["type"] == "STT_FUNC":
            section = elf.get_section(symbol["st_shndx"]).name
            names.setdefault((section, symbol["st_value"]), set()).add(symbol.name)
    return names


# `? f+size/size` entries of each log; one of them in the nooops log also ends a call that
# does not return (propagate_umount+0x620: call __stack_chk_fail).
POINTERS = {"console-sysrq": 145, "console-sysrq-nooops": 142}


@pytest.mark.skipif(shutil.which("nm") is None, reason="nm (binutils) is the oracle")
@pytest.mark.parametrize("log", sorted(POINTERS))
def test_function_pointers_name_their_function(corpus: Corpus, log: str) -> None:
    vmlinux, modules = corpus.debian_vmlinux(), corpus.debian / "modules"
    document = json.loads(_decoded(vmlinux, corpus.debian / "logs" / f"{log}.log", modules, True))
    in_vmlinux = _nm_functions(vmlinux)
    pointers, notes = [], 0
    for report in document["reports"]:
        for frame in report["frames"]:
            if frame["reliable"] or not frame["offset"] or frame["offset"] != frame["size"]:
                continue
            resolved = frame["resolved"]
            pointer = resolved["function_pointer"]
            assert pointer is not None, frame["text"]
            assert frame["locations"] == []
            assert not any("not a return address" in n for n in frame["notes"])
            notes += sum("does not return" in n for n in frame["notes"])
            if frame["module"] is None:
                end = int(resolved["symbol_address"], 16) + frame["size"]
                assert pointer["address"] == f"{end:#x}"
                assert pointer["symbol"] in in_vmlinux[end], frame["text"]
            else:
                names = _ko_functions(modules / f"{frame['module']}.ko")
                end = resolved["section_offset"]
                assert pointer["symbol"] in names[(resolved["section"], end)], frame["text"]
            pointers.append(pointer["symbol"])
    assert len(pointers) == POINTERS[log]
    assert notes == (1 if log == "console-sysrq-nooops" else 0)
    assert pointers.count("kthread") > 0


def test_syms_of_a_module_by_section(corpus: Corpus) -> None:
    module = corpus.debian / "modules" / "tracegen.ko"
    rows = {line.split()[4]: line.split()[0] for line in _run(["syms", str(module)]).splitlines()}
    # objdump -t tracegen.ko: tg_store .text 0x0, tg_thread_fn .text 0xa0.
    assert rows["tg_store"] == ".text+0x0"
    assert rows["tg_thread_fn"] == ".text+0xa0"
    document = json.loads(_run(["syms", "--json", str(module)]))
    by_name = {s["name"]: s for s in document["symbols"]}
    assert by_name["tg_thread_fn"]["address"] is None
    assert by_name["tg_thread_fn"]["section_offset"] == 0xA0
    assert all(s["address"] is None for s in document["symbols"])
