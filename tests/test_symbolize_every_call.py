"""Every call of a kernel's ``.text``, symbolized as a return address (issue 15's bulk stream,
at the scale of a whole kernel): ``symbolize -R --jsonl`` from stdin after ``ltosyms index``
gives, for each, the inline chain llvm-symbolizer gives at the address before it: the same
files and lines, innermost first, and the same names of the inlined functions; the outermost
frame may name another symbol at the same address (ltosyms names the one kallsyms prints).
Every call of the Debian kernel's modules gives the chain ``addr2line -i -j SECTION`` gives
(binutils relocates the ``.ko``'s DWARF itself).

The calls come from GNU objdump's disassembly (the oracle, not ltosyms' sweep): the return
address of a call is the address of the instruction after it.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Corpus, addr2line, llvm_symbolizer

from ltosyms.context import Session

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("objdump") is None, reason="binutils objdump not installed"),
]

# `ffffffff81000031:\tcall   ffffffff810007e0 <startup_64_setup_env>`, prefixes included
# (`cs call` for a call through a retpoline thunk of %r8-%r15).
_INSTRUCTION = re.compile(r"^([0-9a-f]+):\t(\S.*)$")


def call_return_addresses(vmlinux: Path) -> list[int]:
    return [address for _section, address in calls_in(vmlinux, ["-j", ".text"])]


def calls_in(path: Path, options: list[str]) -> list[tuple[str, int]]:
    """(section, return address) of every call objdump disassembles."""
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", *options, str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    returns = []
    section = ""
    after_call = False
    for line in listing.splitlines():
        if line.startswith("Disassembly of section "):
            section, after_call = line.split()[-1].rstrip(":"), False
        match = _INSTRUCTION.match(line.strip())
        if match is None:
            continue
        if after_call:
            returns.append((section, int(match[1], 16)))
        words = match[2].split()
        after_call = any(word.startswith("call") for word in words[:3])
    return returns


def aliases(system_map: Path) -> dict[str, int]:
    return {
        fields[2]: int(fields[0], 16)
        for fields in (line.split() for line in system_map.read_text().splitlines())
        if len(fields) == 3
    }


# Calls per kernel: every call objdump lists but the last of .text (nothing follows it).
CALLS = {"clang-thinlto": 45_392, "gcc-lto": 41_921}


@pytest.mark.parametrize("variant", sorted(CALLS))
def test_every_call_resolves_as_llvm_symbolizer(
    corpus: Corpus, tmp_path: Path, variant: str
) -> None:
    vmlinux = corpus.kernel_vmlinux(variant)
    returns = call_return_addresses(vmlinux)
    assert len(returns) == CALLS[variant]
    command = [sys.executable, "-m", "ltosyms"]
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    index = ["--cache-dir", str(tmp_path)]
    subprocess.run([*command, "index", *index, str(vmlinux)], check=True, env=environment)
    output = subprocess.run(
        [*command, "symbolize", "-R", "--jsonl", "--jobs", "2", *index, str(vmlinux)],
        input="".join(f"{address:x}\n" for address in returns),
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    ).stdout
    answers = [json.loads(line) for line in output.splitlines()]
    assert [int(a["query"], 16) for a in answers] == returns
    theirs = llvm_symbolizer(vmlinux, [address - 1 for address in returns])
    named = aliases(corpus.kernels / variant / "System.map")
    other_alias = 0
    for address, answer in zip(returns, answers, strict=True):
        chain = theirs[address - 1]
        # Only frames with a line are compared: llvm-symbolizer's line 0 is none, and ltosyms
        # names the function without a line there.
        chain = [entry for entry in chain if entry[1] is not None and entry[2]]
        locations = [
            location
            for location in answer["locations"]
            if location["full_path"] is not None and location["line"] is not None
        ]
        assert [
            (posixpath.normpath(location["full_path"]), location["line"]) for location in locations
        ] == [(posixpath.normpath(str(file)), line) for _function, file, line in chain], answer
        assert [location["function"] for location in locations[:-1]] == [
            function for function, _file, _line in chain[:-1]
        ], answer
        if locations and locations[-1]["function"] != chain[-1][0]:
            ours, llvm = locations[-1]["function"], chain[-1][0]
            assert llvm is not None and named[ours] == named[llvm], answer
            other_alias += 1
    # gcc LTO: `__do_sys_fork.lto_priv.0` for `__x64_sys_fork`, `blake2s.lto_priv.0.lto_priv.0`
    # for `blake2s.lto_priv.1.lto_priv.0`: the first of each alias group in kallsyms order.
    assert other_alias == {"clang-thinlto": 0, "gcc-lto": 24}[variant]


def test_every_call_of_the_debian_modules_resolves_as_addr2line(corpus: Corpus) -> None:
    checked = 0
    for ko in sorted((corpus.debian / "modules").glob("*.ko")):
        context = Session(None).open_module(ko)
        dwarf = context.dwarf
        assert dwarf is not None
        starts = {section.name: section.link_address for section in context.image.sections}
        by_section: dict[str, list[int]] = {}
        for section, return_offset in calls_in(ko, []):
            by_section.setdefault(section, []).append(return_offset - 1)
        for section, offsets in by_section.items():
            theirs = addr2line(ko, section, offsets)
            assert sorted(theirs) == sorted(set(offsets))
            for offset in offsets:
                chain = [
                    (function, posixpath.normpath(file), line)
                    for function, file, line in theirs[offset]
                    if file is not None and line is not None
                ]
                ours = [
                    (location.function, posixpath.normpath(str(location.full_path)), location.line)
                    for location in dwarf.locations(starts[section] + offset)
                    if location.line
                ]
                assert [where for _f, *where in ours] == [where for _f, *where in chain], (
                    ko.name,
                    section,
                    hex(offset),
                )
                assert [f for f, *_ in ours[:-1]] == [f for f, *_ in chain[:-1]]
                checked += 1
    assert checked == 1_410  # evdev, tracegen, tun, uhid, zram
