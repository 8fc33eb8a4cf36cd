"""Named call targets (``call at direct_entry+0x142: call lkdtm_do_action``) against objdump.

Every call a decoded frame names is checked against the disassembler kernel developers use:
GNU objdump 2.40 for x86-64 and llvm-objdump 14 for arm64 (binutils here has no aarch64
target). A vmlinux call's target is the ``<symbol+offset>`` objdump prints after it; a module's
call is zero in the ``.ko`` (objdump names the next instruction), and its target is the
relocation ``objdump -dr`` prints under it, a section symbol (``.text.lkdtm_do_action-0x4``)
named by the function at that place of the section.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from conftest import SMALL_KERNELS, Corpus, elffile

from ltosyms.context import ModuleSet, Session
from ltosyms.decode.candidates import Candidate
from ltosyms.decode.decode import Decoder
from ltosyms.decode.frames import ResolvedFrame
from ltosyms.disasm.targets import TargetKind, code_point, thunk_register
from ltosyms.elf.image import KernelImage
from ltosyms.oops.parse import iter_reports

pytestmark = pytest.mark.skipif(
    shutil.which("objdump") is None or shutil.which("llvm-objdump") is None,
    reason="objdump and llvm-objdump (the oracles) are needed",
)


@dataclass(frozen=True)
class Named:
    """One frame's call as ltosyms names it."""

    image: KernelImage
    call_site: int  # link address (module layout for modules)
    length: int
    kind: TargetKind
    symbol: str | None
    offset: int | None
    patched: bool


def named_calls(vmlinux: Path, logs: list[Path], modules: Path) -> list[Named]:
    decoder = Decoder(Session(None).open_vmlinux(vmlinux), ModuleSet([modules]))
    found = []
    for log in logs:
        with log.open("rb") as file:
            for report in decoder.decode_all(iter_reports(file)):
                for frame in report.iter_frames():
                    resolved = frame.resolved
                    if resolved is None or resolved.named_call is None:
                        continue
                    found.append(_named(decoder, frame.frame.module, resolved))
    return found


def _named(decoder: Decoder, module: str | None, resolved: ResolvedFrame) -> Named:
    assert resolved.call_site is not None and resolved.named_call is not None
    resolver = decoder.resolver(module, None) if module else decoder.resolver(None, None)
    assert resolver is not None
    target = resolved.named_call.target
    site = resolved.call_site
    return Named(
        image=resolver.image,
        call_site=site.link_address,
        length=len(site.raw),
        kind=target.kind,
        symbol=target.symbol,
        offset=target.offset,
        patched=site.patch is not None,
    )


# objdump -d: `ffffffff81a16daf:\tcall   ffffffff81a114f0 <schedule>`;
# llvm-objdump -d: `ffffffc008115ef4: \tbl\t0xffffffc008115b60 <vfs_write>`.
# A prefix may come first (`cs call ...`: the retpoline-safe padding of a thunk call).
_CALL = re.compile(
    r"^\s*(?P<address>[0-9a-f]+):\s.*\b(?:call|bl)\s+(?:0x)?[0-9a-f]+ <(?P<target>[^>]+)>\s*$"
)
# objdump -dr of a .ko: `     143: R_X86_64_PLT32\t.text.lkdtm_do_action-0x4`;
# llvm-objdump: `\t\t000000000000003c:  R_AARCH64_CALL26\t__get_free_pages`.
_RELOCATION = re.compile(
    r"^\s+(?P<offset>[0-9a-f]+):\s+(?P<type>R_\w+)\s+(?P<symbol>[^\s+-]+)(?P<addend>[+-]0x[0-9a-f]+)?"
)
_SECTION = re.compile(r"^Disassembly of section (?P<name>\S+):")


def _tool(image: KernelImage) -> str:
    return "objdump" if image.machine == "x86_64" else "llvm-objdump"


def vmlinux_oracle(image: KernelImage, sites: set[int]) -> dict[int, str]:
    """Call site -> the ``<symbol+offset>`` objdump prints as its target."""
    wanted = {f"{site:x}" for site in sites}
    answers = {}
    command = [_tool(image), "-d", "--no-show-raw-insn", str(image.path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            address = line.split(":", 1)[0].strip()
            if address in wanted:
                match = _CALL.match(line)
                if match is not None:
                    answers[int(address, 16)] = match["target"]
    return answers


def module_oracle(image: KernelImage, sites: dict[int, int]) -> dict[int, str]:
    """Call site (module layout) -> the function its relocation aims at, ``name+0xoff``."""
    wanted = {}
    for site, length in sites.items():
        section = image.section_at(site)
        assert section is not None
        wanted[(section.name, site - section.link_address)] = (site, length)
    output = subprocess.run(
        [_tool(image), "-dr", "--no-show-raw-insn", str(image.path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    relocations: dict[tuple[str, int], tuple[str, str, int]] = {}
    calls: dict[tuple[str, int], str] = {}
    section_name = ""
    for line in output.splitlines():
        if (match := _SECTION.match(line)) is not None:
            section_name = match["name"]
        elif (match := _CALL.match(line)) is not None:
            calls[(section_name, int(match["address"], 16))] = match["target"]
        elif (match := _RELOCATION.match(line)) is not None:
            addend = int(match["addend"] or "0", 16)
            key = (section_name, int(match["offset"], 16))
            relocations[key] = (match["type"], match["symbol"], addend)
    answers = {}
    for (section_name, offset), (site, length) in wanted.items():
        # A call the assembler resolved (to a function of the same section) has no
        # relocation: objdump names its target.
        if (section_name, offset) in calls:
            answers[site] = calls[(section_name, offset)]
        for field in range(offset, offset + length):
            if (section_name, field) not in relocations:
                continue
            kind, symbol, addend = relocations[(section_name, field)]
            # x86-64: S + A + (end - P); arm64 CALL26/JUMP26: S + A.
            target = addend + (offset + length - field if kind.startswith("R_X86_64") else 0)
            answers[site] = _function_at(image.path, symbol, target)
    return answers


def _function_at(path: Path, symbol: str, offset: int) -> str:
    """``symbol+offset`` named by the function there when ``symbol`` is a section (pyelftools
    reads the symbol table: the reference, not ltosyms' reader)."""
    elf = elffile(path)
    section = elf.get_section_by_name(symbol)
    if section is None:
        return f"{symbol}+{offset:#x}" if offset else symbol
    index = elf.get_section_index(symbol)
    for candidate in elf.get_section_by_name(".symtab").iter_symbols():
        if (
            candidate["st_shndx"] == index
            and candidate["st_info"]["type"] == "STT_FUNC"
            and candidate["st_value"] <= offset < candidate["st_value"] + candidate["st_size"]
        ):
            inside = offset - candidate["st_value"]
            return f"{candidate.name}+{inside:#x}" if inside else candidate.name
    return f"{symbol}+{offset:#x}"


def check(named: list[Named]) -> tuple[Counter[str], list[str]]:
    """Counts (checked per kind, patched sites left out) and the differences from objdump."""
    counts: Counter[str] = Counter()
    differences = []
    by_image: dict[KernelImage, list[Named]] = {}
    for call in named:
        if call.patched:
            counts["patched at boot (not compared)"] += 1
        elif call.symbol is None:
            counts[f"{call.kind.value} (no symbol)"] += 1
        else:
            by_image.setdefault(call.image, []).append(call)
    for image, calls in by_image.items():
        if image.is_module:
            oracle = module_oracle(image, {c.call_site: c.length for c in calls})
        else:
            oracle = vmlinux_oracle(image, {c.call_site for c in calls})
        for call in calls:
            ours = f"{call.symbol}+{call.offset:#x}" if call.offset else str(call.symbol)
            kind = call.kind.value + (" (module)" if image.is_module else "")
            theirs = oracle.get(call.call_site)
            if theirs == ours:
                counts[kind] += 1
            elif theirs is not None and _aliases(image.path, ours, theirs):
                # Several names at the target (`__x86_indirect_thunk_array` is the first
                # thunk, `__x86_indirect_thunk_rax`): ltosyms names the one kallsyms prints.
                counts[f"{kind}, objdump names an alias"] += 1
            else:
                differences.append(
                    f"{image.path.name} {call.call_site:#x}: ours {ours}, {_tool(image)} {theirs}"
                )
    return counts, differences


@cache
def _nm(path: Path) -> dict[str, set[int]]:
    """Addresses of every name, from nm (the oracle's own symbol reader)."""
    addresses: dict[str, set[int]] = {}
    output = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 3:
            addresses.setdefault(fields[2], set()).add(int(fields[0], 16))
    return addresses


def _aliases(path: Path, ours: str, theirs: str) -> bool:
    if "+" in ours or "+" in theirs:
        return False
    addresses = _nm(path)
    return len(addresses.get(ours, ())) == 1 and addresses.get(ours) == addresses.get(theirs)


# Frames whose call is named, per corpus kernel (its logs) and kind; "objdump names an alias":
# another name at the same address, which nm confirms. Debian: `? propagate_umount+0x620/0x620`
# ends a call that does not return (__stack_chk_fail) and is read as the pointer to the next
# function it is, not as that call's return address.
EXPECTED = {
    "debian": {
        "direct": 711,
        "direct (module)": 34,
        "thunk": 236,
        "thunk, objdump names an alias": 45,
        "static_call": 1,
        "patched at boot (not compared)": 9,
    },
    "clang-thinlto": {"direct": 150, "direct (module)": 13, "indirect (no symbol)": 82},
    "arm64-clang-thinlto": {"direct": 262, "direct (module)": 13, "indirect (no symbol)": 132},
    "clang-nolto": {"direct": 145, "direct (module)": 13, "indirect (no symbol)": 78},
    "gcc-nolto": {"direct": 135, "direct (module)": 13, "indirect (no symbol)": 80},
    "gcc-lto": {"direct": 158, "direct (module)": 13, "indirect (no symbol)": 81},
    "clang-thinlto-6.12": {"direct": 188, "direct (module)": 13, "indirect (no symbol)": 98},
}


@pytest.mark.slow
def test_debian_call_targets_equal_objdump(corpus: Corpus) -> None:
    logs = [
        corpus.debian / "logs" / log for log in ("console-sysrq.log", "console-sysrq-nooops.log")
    ]
    counts, differences = check(
        named_calls(corpus.debian_vmlinux(), logs, corpus.debian / "modules")
    )
    assert differences == []
    assert dict(counts) == EXPECTED["debian"]


@pytest.mark.parametrize("variant", SMALL_KERNELS)
def test_kernel_call_targets_equal_objdump(corpus: Corpus, variant: str) -> None:
    folder = corpus.kernels / variant
    counts, differences = check(
        named_calls(corpus.kernel_vmlinux(variant), [folder / "console.log"], folder)
    )
    assert differences == []
    assert dict(counts) == EXPECTED[variant]


def test_module_calls_are_call_target_evidence(corpus: Corpus) -> None:
    """Between adjacent frames, a module's call names its callee by its relocation: arm64
    `lkdtm_CORRUPT_LIST_ADD+0x88 [lkdtm]` (R_AARCH64_CALL26 __list_add_valid) calls the
    kernel's `__list_add_valid+0x44` above it; before, a module's call said nothing."""
    folder = corpus.kernels / "arm64-clang-thinlto"
    decoder = Decoder(
        Session(None).open_vmlinux(corpus.kernel_vmlinux("arm64-clang-thinlto")),
        ModuleSet([folder]),
    )
    verdicts = []
    with (folder / "console.log").open("rb") as file:
        for report in decoder.decode_all(iter_reports(file)):
            for trace in report.traces:
                frames = [f.resolved for f in trace.frames if f.resolved is not None]
                for callee, caller, further in zip(frames, frames[1:], frames[2:], strict=False):
                    if caller.module != "lkdtm" or callee.module is not None:
                        continue
                    resolver = decoder.resolver("lkdtm", None)
                    assert resolver is not None and caller.symbol is not None
                    assert caller.link_address is not None
                    candidate = Candidate(symbol=caller.symbol, link_address=caller.link_address)
                    # The frame below the caller (its own caller) is no callee of it.
                    for frame in (callee, further):
                        assert frame.symbol is not None
                        test = resolver.call_target_test(frame)
                        assert test is not None
                        verdicts.append((frame.symbol.name, test(candidate)))
    assert verdicts == [("__list_add_valid", True), ("lkdtm_do_action", False)]


def test_a_modules_call_enters_any_alias_of_the_kernels_function(corpus: Corpus) -> None:
    """zram's `backing_dev_show+0x62` returns from `call memmove` (R_X86_64_PLT32 memmove in
    the .ko); kallsyms prints the kernel's function as `__memmove` (the strong alias, first in
    kallsyms order; `memmove` is its weak alias): the loader's `memmove` is that callee."""
    decoder = Decoder(
        Session(None).open_vmlinux(corpus.debian_vmlinux()),
        ModuleSet([corpus.debian / "modules"]),
    )
    kernel, zram = decoder.resolver(None, None), decoder.resolver("zram", None)
    assert kernel is not None and zram is not None
    (caller,) = zram.symbols.by_name("backing_dev_show")
    candidate = Candidate(symbol=caller, link_address=caller.link_address + 0x62)
    (strong,) = kernel.symbols.by_name("__memmove")
    assert kernel.symbols.lookup(strong.link_address) == strong
    callee = ResolvedFrame(module=None, notes=(), symbol=strong, link_address=strong.link_address)
    names = kernel.alias_names(strong)
    assert names == {"__memmove", "memmove"}
    test = zram.call_target_test(callee, names)
    assert test is not None and test(candidate) is True
    # By the callee's own name alone, the relocation's `memmove` is another function.
    test = zram.call_target_test(callee)
    assert test is not None and test(candidate) is False


def test_the_rax_thunk_is_named_by_its_register(corpus: Corpus) -> None:
    """kallsyms prints `__x86_indirect_thunk_array` at the thunk of %rax (the start of the
    array of thunks, arch/x86/lib/retpoline.S); what a call enters is named by the alias that
    says the register, as the thunks of the other registers are."""
    symbols = Session(None).open_vmlinux(corpus.debian_vmlinux()).symbols
    rax = symbols.address_of("__x86_indirect_thunk_rax")
    assert rax is not None and rax == symbols.address_of("__x86_indirect_thunk_array")
    found = symbols.lookup(rax + 3)
    assert found is not None and found.name == "__x86_indirect_thunk_array"
    assert str(code_point(symbols, rax)) == "__x86_indirect_thunk_rax"
    assert str(code_point(symbols, rax + 3)) == "__x86_indirect_thunk_rax+0x3"
    assert thunk_register("__x86_indirect_thunk_array") is None
    assert thunk_register("__x86_indirect_thunk_rax") == "*%rax"
