"""Call sites of return addresses, Code: listings and Code: comparisons, on real kernels.

The corpus logs give the ground truth: every reliable Call Trace entry is a return address, so
a call must end there; ``? `` entries whose slot held a function pointer must not be calls;
every ``Code:`` line of a crash must match the kernel that crashed and must not match another
build. The syzkaller corpus gives objdump's listing of two ``Code:`` lines.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SAMPLES, Corpus

from ltosyms.disasm import (
    BytesSource,
    CallKind,
    CallSite,
    CallSiteFinder,
    CodeVerdict,
    PatchReason,
    Sweep,
    SweepMethod,
    call_ending_at,
    code_bytes_from_words,
    compare_code,
    disassemble_code,
    finder_for,
    image_window,
    patch_sites,
)
from ltosyms.disasm.callsite import MAX_SWEEP_BYTES
from ltosyms.elf.image import KernelImage, open_image
from ltosyms.elf.symtab import Symbol, SymbolTable
from ltosyms.errors import InputError
from ltosyms.render.code_listing import code_listing_json, code_listing_lines, code_match_line
from ltosyms.stores import MemoryMemo

X86_VARIANTS = ("clang-thinlto", "clang-nolto", "gcc-nolto")
# The build each x86 variant's Code: lines are checked against as "a different kernel".
OTHER_BUILD = {"clang-thinlto": "gcc-nolto", "clang-nolto": "gcc-nolto", "gcc-nolto": "clang-nolto"}


# -- small helpers: the oops parser is not used here, a few regexes suffice ----------------------

RIP_LINE = re.compile(
    r"(?:RIP: 0010:|pc : )(?P<symbol>[\w.]+)\+0x(?P<offset>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)"
    r"(?: \[(?P<module>\w+)[^\]]*\])?"
)
CODE_LINE = re.compile(r"Code: (?P<text>.*?)\s*$")


@dataclass(frozen=True)
class CodeCase:
    line_no: int
    symbol: str
    offset: int
    size: int
    module: str | None
    code: bytes  # empty: "Unable to access opcode bytes"
    marker_index: int


def parse_code_text(text: str) -> tuple[bytes, int] | None:
    """``48 89 <0f> 0b`` or ``d503201f (d4210000)``: bytes in memory order, marker index."""
    data = b""
    marker = None
    for token in text.split():
        if token[0] in "<(":
            marker = len(data)
        digits = token.strip("<>()")
        if not re.fullmatch(r"[0-9a-f]+", digits):
            return None
        if len(digits) == 2:
            data += bytes([int(digits, 16)])
        else:
            data += code_bytes_from_words([int(digits, 16)])
    return (data, marker) if marker is not None else None


def code_cases(log: Path) -> Iterator[CodeCase]:
    """Kernel-mode RIP/pc lines with the Code: line that follows them."""
    pending = None
    lines = log.read_text(errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        if "RIP: " in line or "pc : " in line:
            pending = RIP_LINE.search(line)  # None for user mode (RIP: 0033:0x47b7a0)
            continue
        code = CODE_LINE.search(line)
        if code and pending is not None:
            parsed = parse_code_text(code.group("text"))
            data, marker = parsed if parsed else (b"", 0)
            yield CodeCase(
                number,
                pending["symbol"],
                int(pending["offset"], 16),
                int(pending["size"], 16),
                pending["module"],
                data,
                marker,
            )
            pending = None


class Images:
    """Opens each image once and gives symbols by printed name and size."""

    def __init__(self) -> None:
        self._open: dict[Path, tuple[KernelImage, SymbolTable]] = {}

    def get(self, path: Path) -> tuple[KernelImage, SymbolTable]:
        if path not in self._open:
            image = open_image(path)
            self._open[path] = (image, SymbolTable(image))
        return self._open[path]

    def symbol(self, path: Path, printed: str, size: int | None = None) -> Symbol:
        """The symbol an oops printed as ``printed+off/size`` (LTO names lose .llvm.N)."""
        _image, symbols = self.get(path)
        candidates = symbols.by_name(printed) or symbols.by_base_name(printed)
        if size is not None and len(candidates) > 1:
            candidates = [s for s in candidates if s.kallsyms_size == size]
        assert len(candidates) == 1, (printed, size, candidates)
        return candidates[0]

    def close(self) -> None:
        for image, _symbols in self._open.values():
            image.close()


@pytest.fixture(scope="module")
def images() -> Iterator[Images]:
    opened = Images()
    yield opened
    opened.close()


def debian_images(corpus: Corpus, module: str | None) -> Path:
    if module is None:
        return corpus.debian_vmlinux()
    return corpus.debian / "modules" / f"{module}.ko"


def kernel_image(corpus: Corpus, variant: str, module: str | None) -> Path:
    if module is None:
        return corpus.kernel_vmlinux(variant)
    return corpus.kernels / variant / f"{module}.ko"


# -- call_ending_at on hand-made code -----------------------------------------------------------

# A function at 0x1000: push %rbp; mov %rsp,%rbp; call 0x2000; call *%rax; call *%r11;
# pop %rbp; call 0x1000 (a noreturn call as the last instruction).
X86_FUNCTION = bytes.fromhex("55 4889e5 e8f70f0000 ffd0 41ffd3 5d e8ecffffff")


def test_x86_direct_indirect_and_not_a_call() -> None:
    finder = CallSiteFinder(BytesSource(X86_FUNCTION, 0x1000), "x86_64")
    direct = finder.call_ending_at(0x1009, 0x1000)
    assert direct is not None and direct.kind is CallKind.DIRECT
    assert (direct.link_address, direct.length, direct.target_link_address) == (0x1004, 5, 0x2000)
    assert direct.raw == bytes.fromhex("e8f70f0000") and direct.method is SweepMethod.FUNCTION_SWEEP
    register = finder.call_ending_at(0x100B, 0x1000)
    assert register is not None and register.is_indirect and register.target_link_address is None
    extended = finder.call_ending_at(0x100E, 0x1000)
    assert extended is not None and extended.kind is CallKind.INDIRECT and extended.length == 3
    pop = finder.call_ending_at(0x100F, 0x1000)
    assert pop is not None and not pop.is_call and pop.mnemonic.startswith("pop")
    last = finder.call_ending_at(0x1014, 0x1000)
    assert last is not None and last.target_link_address == 0x1000 and last.call_site == 0x100F


def test_x86_calls_from_row_starts_are_those_of_the_function_sweep() -> None:
    # Rows of X86_FUNCTION as a compiler would start them: at push, at the direct call, at
    # `call *%rax`, at pop. A return address is looked up at its address - 1.
    rows = (0x1000, 0x1004, 0x1009, 0x100E)
    asked: list[int] = []

    def row_start(address: int) -> int | None:
        asked.append(address)
        return max((row for row in rows if row <= address), default=None)

    swept = CallSiteFinder(BytesSource(X86_FUNCTION, 0x1000), "x86_64")
    sweeps: MemoryMemo[int, Sweep] = MemoryMemo()
    from_rows = CallSiteFinder(BytesSource(X86_FUNCTION, 0x1000), "x86_64", row_start=row_start)
    for return_address in range(0x1001, 0x1015):
        got = from_rows.call_ending_at(return_address, 0x1000)
        assert got == swept.call_ending_at(return_address, 0x1000), hex(return_address)
    assert len(asked) == 0x14  # every return address asked its row once
    # The calls ending at 0x1009, 0x100B, 0x100E and 0x1014 came from their rows: a finder
    # that keeps its function sweeps made none for them. (Kept sweeps need a symbol table:
    # a sample's, which has no symbol at these addresses.)
    with open_image(SAMPLES / "vmlinux-gcc") as image:
        keeping = CallSiteFinder(
            BytesSource(X86_FUNCTION, 0x1000),
            "x86_64",
            SymbolTable(image),
            sweeps=sweeps,
            row_start=row_start,
        )
        for return_address in (0x1009, 0x100B, 0x100E, 0x1014):
            site = keeping.call_ending_at(return_address, 0x1000)
            assert site is not None and site.is_call
            assert site == swept.call_ending_at(return_address, 0x1000)
        assert sweeps.records == {}
        assert keeping.call_ending_at(0x100F, 0x1000) == swept.call_ending_at(0x100F, 0x1000)
        assert list(sweeps.records) == [0x1000]  # `pop` is no call: the function sweep decides


def test_x86_a_far_function_start_is_no_start_for_row_sweeps_either() -> None:
    # A "function start" more than MAX_SWEEP_BYTES before the return address is a wrong
    # guess: the bytes before the return address decide, with or without a row start.
    padding = bytes(MAX_SWEEP_BYTES + 0x100)  # `add %al,(%rax)`, two bytes at a time
    code = padding + X86_FUNCTION
    base = 0x10000
    call_end = base + len(padding) + 9  # the direct call's return address

    def row_start(address: int) -> int | None:
        return base + len(padding) + 4  # the call's own row

    far = CallSiteFinder(BytesSource(code, base), "x86_64", row_start=row_start)
    site = far.call_ending_at(call_end, base)
    assert site is not None and site.method is SweepMethod.BACKWARD_WINDOW
    assert site == CallSiteFinder(BytesSource(code, base), "x86_64").call_ending_at(call_end, base)
    near = CallSiteFinder(BytesSource(code, base), "x86_64", row_start=row_start)
    site = near.call_ending_at(call_end, base + len(padding))
    assert site is not None and site.method is SweepMethod.FUNCTION_SWEEP
    assert site.link_address == call_end - 5


def test_x86_no_instruction_ends_inside_an_instruction() -> None:
    finder = CallSiteFinder(BytesSource(X86_FUNCTION, 0x1000), "x86_64")
    assert finder.call_ending_at(0x1008, 0x1000) is None  # inside the 5-byte call
    assert finder.call_ending_at(0x1003, 0x1000) is None  # inside mov %rsp,%rbp


def test_x86_shortened_call_without_patch_tables() -> None:
    # Without site tables, a return address 2 bytes into a rel32 call is the retpoline
    # rewrite `call *%reg` (arch/x86/kernel/alternative.c patch_retpoline).
    site = CallSiteFinder(BytesSource(X86_FUNCTION, 0x1000), "x86_64").call_ending_at(
        0x1006, 0x1000
    )
    assert site is not None and site.kind is CallKind.INDIRECT
    assert site.patch is PatchReason.CALL_OR_JUMP and (site.link_address, site.length) == (
        0x1004,
        2,
    )


def test_x86_backward_window_without_function_start() -> None:
    site = call_ending_at(X86_FUNCTION, 0x1009, "x86_64", None, code_address=0x1000)
    assert site is not None and site.method is SweepMethod.BACKWARD_WINDOW
    assert site.kind is CallKind.DIRECT and site.link_address == 0x1004


def test_x86_sweep_steps_over_bytes_that_are_no_instruction() -> None:
    # ud2, then 0x06 (push %es: invalid in 64-bit mode) as data after a BUG, then a call.
    code = bytes.fromhex("0f0b 06 e800000000 c3")
    site = call_ending_at(code, 0x2008, "x86_64", 0x2000)
    assert site is not None and site.is_call and site.link_address == 0x2003


def test_arm64_fixed_width() -> None:
    # stp x29, x30, [sp, #-16]!; bl +0x40; blr x8; nop
    code = code_bytes_from_words([0xA9BF7BFD, 0x94000010, 0xD63F0100, 0xD503201F])
    finder = CallSiteFinder(BytesSource(code, 0x4000), "arm64")
    bl = finder.call_ending_at(0x4008, None)
    assert bl is not None and bl.kind is CallKind.DIRECT and bl.target_link_address == 0x4044
    assert bl.method is SweepMethod.FIXED_WIDTH and bl.mnemonic == "bl"
    blr = finder.call_ending_at(0x400C, None)
    assert blr is not None and blr.kind is CallKind.INDIRECT
    nop = finder.call_ending_at(0x4010, None)
    assert nop is not None and not nop.is_call
    assert finder.call_ending_at(0x4006, None) is None


def test_raw_bytes_need_an_architecture() -> None:
    with pytest.raises(InputError):
        call_ending_at(X86_FUNCTION, 0x1009, None, 0x1000)
    with pytest.raises(InputError):
        CallSiteFinder(BytesSource(X86_FUNCTION, 0), "mips")


# -- Code: listings and comparisons on hand-made bytes --------------------------------------------


def test_listing_marks_the_fault_and_covers_every_byte() -> None:
    # mov %rsp,%rbp; nopl 0x0(%rax,%rax,1); <ud2>; ret -- with a stray byte before.
    code = bytes.fromhex("ff 4889e5 0f1f440000 0f0b c3")
    listing = disassemble_code(code, 9, "x86_64", 0xFFFFFFFF81000010)
    assert b"".join(i.raw for i in listing.instructions) == code
    fault = listing.fault
    assert fault is not None and fault.mnemonic == "ud2" and fault.offset == 0
    assert fault.link_address == 0xFFFFFFFF81000010
    assert [i.offset for i in listing.instructions if i.is_fault] == [0]
    assert listing.instructions[0].link_address == 0xFFFFFFFF81000007
    lines = list(code_listing_lines(listing))
    assert lines[listing.instructions.index(fault)].startswith("* ffffffff81000010:")
    assert "trapping instruction" in lines[listing.instructions.index(fault)]
    document = code_listing_json(listing)
    assert document["fault_address"] == "0xffffffff81000010"
    assert sum(i["fault"] for i in document["instructions"]) == 1


def test_listing_without_marker() -> None:
    listing = disassemble_code(bytes.fromhex("4889e5 0f0b c3"), None, "x86_64", 0xFFFF0000)
    assert listing.fault is None and listing.marker_link_address is None
    assert [i.offset for i in listing.instructions] == [0, 3, 5]
    assert [line.split(":")[0].strip() for line in code_listing_lines(listing)] == ["0", "3", "5"]


def test_listing_uses_known_boundaries() -> None:
    # `00 00 00` padding between two functions: without the boundary the next function's
    # first instruction is decoded out of step.
    code = bytes.fromhex("0f0b c3 000000 8b35c69d0000 c3")
    plain = disassemble_code(code, 0, "x86_64")
    guided = disassemble_code(code, 0, "x86_64", boundaries=[6])
    assert 6 not in [i.offset for i in plain.instructions]
    movl = [i for i in guided.instructions if i.offset == 6]
    assert movl and movl[0].mnemonic.startswith("mov") and movl[0].raw.hex() == "8b35c69d0000"


def _x86_code(site: str) -> tuple[bytes, int]:
    code = bytes.fromhex("4889e5" + site + "0f0b c3")
    return code, len(code) - 3


def test_compare_match_patched_and_mismatch() -> None:
    image, marker = _x86_code("0f1f440000")  # a jump label NOP in the image
    assert compare_code(image, marker, image, "x86_64").verdict is CodeVerdict.MATCH
    taken, _ = _x86_code("e912340000")  # the same site as `jmp` at run time
    patched = compare_code(taken, marker, image, "x86_64")
    assert patched.verdict is CodeVerdict.PATCHED and patched.is_match
    assert [(s.offset, s.length, s.reason) for s in patched.patched_sites] == [
        (-5, 5, PatchReason.NOP)
    ]
    other = bytearray(taken)
    other[2] = 0xE6  # mov %rsp,%rsi: an unrelated difference
    mismatch = compare_code(bytes(other), marker, image, "x86_64")
    assert mismatch.verdict is CodeVerdict.MISMATCH and mismatch.unexplained_offsets == (-6,)
    assert "DOES NOT match" in code_match_line(mismatch, "vmlinux")


def test_compare_relocated_fields() -> None:
    linked, marker = _x86_code("48c7c700000000")  # mov $sym,%rdi: zero in a .ko (RELA)
    loaded, _ = _x86_code("48c7c778563412")
    module = compare_code(loaded, marker, linked, "x86_64", image_is_module=True)
    assert [s.reason for s in module.patched_sites] == [PatchReason.MODULE_RELOCATION]
    assert compare_code(loaded, marker, linked, "x86_64").verdict is CodeVerdict.MISMATCH
    vmlinux, _ = _x86_code("48c7c7e0ff4481")  # 0xffffffff8144ffe0
    shifted, _ = _x86_code("48c7c7e0ff44a5")  # + 0x24000000: a KASLR offset (2 MiB steps)
    kaslr = compare_code(shifted, marker, vmlinux, "x86_64")
    assert [s.reason for s in kaslr.patched_sites] == [PatchReason.KASLR_RELOCATION]
    odd, _ = _x86_code("48c7c7e1ff44a5")
    assert compare_code(odd, marker, vmlinux, "x86_64").verdict is CodeVerdict.MISMATCH


def test_compare_arm64_rules() -> None:
    def words(*values: int) -> bytes:
        return code_bytes_from_words(values)

    # adrp x0, ...; add x0, x0, #...; bl ...; (brk #0x800)
    linked = words(0x90000000, 0x91000000, 0x94000000, 0xD4210000)
    loaded = words(0xB0000020, 0x913AC400, 0x97FFFC81, 0xD4210000)
    module = compare_code(loaded, 12, linked, "arm64", image_is_module=True)
    assert module.verdict is CodeVerdict.PATCHED
    assert [s.reason for s in module.patched_sites] == [
        PatchReason.MODULE_RELOCATION,
        PatchReason.MODULE_RELOCATION,
        PatchReason.CALL_OR_JUMP,
    ]
    vmlinux = compare_code(loaded, 12, linked, "arm64")
    assert vmlinux.verdict is CodeVerdict.MISMATCH and vmlinux.unexplained_offsets[:1] == (-12,)


def test_compare_without_bytes_is_unknown() -> None:
    result = compare_code(b"", 0, b"\x0f\x0b", "x86_64")
    assert result.verdict is CodeVerdict.UNKNOWN and not result.is_match
    assert "not compared" in code_match_line(result, "vmlinux")


# -- sample images -----------------------------------------------------------------------------


def _manifest() -> dict[str, object]:
    path = SAMPLES / "MANIFEST.json"
    if not path.is_file():
        pytest.skip("testdata/vmlinux-samples/MANIFEST.json not present")
    manifest: dict[str, object] = json.loads(path.read_text())
    return manifest


def _sample_names() -> list[str]:
    return [
        "vmlinux-gcc",
        "vmlinux-gcc-lto",
        "vmlinux-clang",
        "vmlinux-clang-thinlto",
        "vmlinux-clang-lto",
    ]


@pytest.mark.parametrize("name", _sample_names())
def test_samples_calls_ending_functions(name: str, images: Images) -> None:
    images_manifest = _manifest()["images"]
    assert isinstance(images_manifest, dict)
    entry = images_manifest[name]
    image, symbols = images.get(SAMPLES / name)
    finder = CallSiteFinder(image, symbols=symbols)
    checked = 0
    for ending in entry["functions_ending_in_call"]:
        start = images.symbol(SAMPLES / name, ending["name"]).link_address
        return_address = int(ending["return_address"], 16)
        site = finder.call_ending_at(return_address, start)
        assert site is not None and site.kind is CallKind.DIRECT, ending
        assert site.call_site == int(ending["call_address"], 16)
        target = symbols.lookup(site.target_link_address or 0)
        assert target is not None and target.base_name == ending["call_target"].split(".")[0]
        checked += 1
    noreturn = entry["noreturn_last_call"]
    # The oops prints widget_fatal+SIZE/SIZE: the return address is the next function's start,
    # and the call lies inside widget_fatal.
    start = int(noreturn["address"], 16)
    return_address = int(noreturn["return_address"], 16)
    site = finder.call_ending_at(return_address, start)
    assert site is not None and start <= site.call_site < start + noreturn["kallsyms_size"]
    assert site.call_site == int(noreturn["call_address"], 16)
    target = symbols.lookup(site.target_link_address or 0)
    assert target is not None and target.base_name == noreturn["call_target"].split(".")[0]
    following = symbols.lookup(return_address)
    assert following is not None and following.name in noreturn["symbols_at_return_address"]
    chain = entry["inline_chain"]
    site = finder.call_ending_at(
        int(chain["return_address"], 16), int(chain["function_address"], 16)
    )
    assert site is not None and site.call_site == int(chain["call_address"], 16)
    assert checked >= 1


@pytest.mark.parametrize("name", ["sample_mod-gcc.ko", "sample_mod-clang.ko"])
def test_samples_module_calls(name: str, images: Images) -> None:
    modules = _manifest()["modules"]
    assert isinstance(modules, dict)
    image, symbols = images.get(SAMPLES / name)
    finder = CallSiteFinder(image, symbols=symbols)
    calls = modules[name]["calls"]
    for call in calls:
        section = image.get_section(call["section"])
        assert section is not None
        start = images.symbol(SAMPLES / name, call["function"]).link_address
        return_address = section.link_address + int(call["return_offset"], 16)
        site = finder.call_ending_at(return_address, start)
        assert site is not None and site.is_call, call
        assert site.call_site == section.link_address + int(call["call_offset"], 16)
        # An ET_REL call's displacement is a relocation: the .ko does not know the target.
        assert site.target_link_address is None
    assert len(calls) >= 5


# -- capstone's library without the package ------------------------------------------------------


def _package_instructions(arch: str, code: bytes, address: int) -> list[tuple[int, int, str, str]]:
    import capstone

    if arch == "x86_64":
        handle = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        handle.syntax = capstone.CS_OPT_SYNTAX_ATT
    else:
        handle = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    return list(handle.disasm_lite(code, address))


def _library_instructions(arch: str, code: bytes, address: int) -> list[tuple[int, int, str, str]]:
    from ltosyms.disasm import capstone_library as library

    if arch == "x86_64":
        handle = library.open_handle(library.CS_ARCH_X86, library.CS_MODE_64, att_syntax=True)
    else:
        handle = library.open_handle(library.CS_ARCH_ARM64, library.CS_MODE_ARM, att_syntax=False)
    assert handle is not None  # the installed capstone is 5.x (pyproject.toml)
    return list(handle.disasm_lite(code, address))


def _text(path: Path, limit: int) -> tuple[bytes, int]:
    with open_image(path) as image:
        text = image.get_section(".text")
        assert text is not None
        return bytes(image.read(text.link_address, min(text.size, limit))), text.link_address


def test_capstone_library_decodes_the_sample_code_as_the_package() -> None:
    code, address = _text(SAMPLES / "vmlinux-gcc", 1 << 20)
    expected = _package_instructions("x86_64", code, address)
    assert _library_instructions("x86_64", code, address) == expected
    assert sum(size for _address, size, _mnemonic, _operands in expected) == len(code)
    # Cut short at the first bytes that are no instruction, and one at a time, alike.
    boundary = sum(size for _address, size, _mnemonic, _operands in expected[:10])
    cut = code[:boundary] + b"\x06" + code[boundary:]  # push %es: none in 64-bit mode
    assert _library_instructions("x86_64", cut, address) == expected[:10]
    from ltosyms.disasm import capstone_library as library

    handle = library.open_handle(library.CS_ARCH_X86, library.CS_MODE_64, att_syntax=True)
    assert handle is not None
    assert list(handle.disasm_lite(code, address, 1)) == expected[:1]
    assert list(handle.disasm_lite(b"", address)) == []


def test_capstone_library_gives_the_x86_encoding_fields_the_package_gives() -> None:
    import capstone

    from ltosyms.disasm import capstone_library as library

    code, address = _text(SAMPLES / "vmlinux-gcc", 1 << 20)
    package = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    package.detail = True
    handle = library.open_handle(library.CS_ARCH_X86, library.CS_MODE_64, True, detail=True)
    assert handle is not None
    with_fields = 0
    for insn in package.disasm(code, address):
        start = insn.address - address
        got = handle.x86_encoding(code[start : start + 15], insn.address)
        assert got == (insn.disp_offset, insn.disp_size, insn.imm_offset, insn.imm_size), insn
        with_fields += bool(insn.disp_size or insn.imm_size)
    # Of the sample's instructions, those with a displacement or an immediate.
    assert with_fields == 456
    assert handle.x86_encoding(b"\x06", address) is None  # push %es: none in 64-bit mode


def test_capstone_library_decodes_arm64_kernel_code_as_the_package(corpus: Corpus) -> None:
    code, address = _text(corpus.kernel_vmlinux("arm64-clang-thinlto"), 1 << 20)
    expected = _package_instructions("aarch64", code, address)
    assert len(expected) == len(code) // 4  # no word of the first MiB that is no instruction
    assert _library_instructions("aarch64", code, address) == expected


def test_a_sweep_does_not_import_the_capstone_package() -> None:
    # The package's import is ~50 ms of a short run (ltosyms.disasm.capstone_library).
    program = (
        "import sys; from ltosyms.disasm.decoder import iter_instructions, decode_one; "
        "assert list(iter_instructions('x86_64', b'\\xe8\\0\\0\\0\\0\\xc3', 0x1000)) == "
        "[(0x1000, 5, 'callq', '0x1005'), (0x1005, 1, 'retq', '')]; "
        "assert decode_one('aarch64', b'\\x00\\x00\\x00\\x94', 0) == (0, 4, 'bl', '#0'); "
        "from ltosyms.disasm.decoder import x86_operand_fields as fields; "
        "assert fields(b'\\x48\\x8b\\x45\\x08', 0) == ((3, 1),); "
        "print('capstone' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert done.stdout == "False\n"


# -- real kernels: return addresses --------------------------------------------------------------


def _frames(path: Path) -> list[dict[str, object]]:
    frames: list[dict[str, object]] = json.loads(path.read_text())
    return frames


def _debian_sites(
    corpus: Corpus, images: Images
) -> Iterator[tuple[dict[str, object], CallSite | None]]:
    """Every return-address frame of the Debian logs with what call_ending_at says."""
    for frame in _frames(corpus.debian / "expected" / "frames.json"):
        if frame["role"] != "ret":
            continue
        module = frame["module"]
        assert module is None or isinstance(module, str)
        path = debian_images(corpus, module)
        image, symbols = images.get(path)
        symbol = images.symbol(path, str(frame["symbol"]), int(str(frame["size"])))
        return_address = symbol.link_address + int(str(frame["offset"]))
        site = finder_for(image, symbols).call_ending_at(return_address, symbol.link_address)
        yield frame, site


def test_debian_every_reliable_return_address_follows_a_call(
    corpus: Corpus, images: Images
) -> None:
    checked = modules = 0
    for frame, site in _debian_sites(corpus, images):
        if frame["unreliable"]:
            continue
        assert site is not None and site.is_call, (frame["raw_line"], site)
        checked += 1
        modules += frame["module"] is not None
    # 762 vmlinux and 29 module frames (tracegen, zram, tun, uhid, evdev) in the two logs.
    assert (checked, modules) == (791, 29)


def test_debian_function_pointer_slots_are_not_return_addresses(
    corpus: Corpus, images: Images
) -> None:
    checked = 0
    for frame, site in _debian_sites(corpus, images):
        if str(frame["comparison"]).startswith("llvm-empty-function"):
            assert site is None or not site.is_call, frame["raw_line"]
            checked += 1
    assert checked == 220


def test_debian_offset_equal_to_size_is_a_call_in_the_caller(
    corpus: Corpus, images: Images
) -> None:
    calls = 0
    for frame, site in _debian_sites(corpus, images):
        if frame["offset"] != frame["size"] or site is None or not site.is_call:
            continue
        size = int(str(frame["size"]))
        module = frame["module"]
        path = debian_images(corpus, module if isinstance(module, str) else None)
        caller = images.symbol(path, str(frame["symbol"]), size)
        assert caller.link_address <= site.call_site < caller.link_address + size
        assert site.call_site + site.length == caller.link_address + size
        calls += 1
    assert calls >= 1  # `? propagate_umount+0x620/0x620`: a call as the last instruction


def test_debian_alternative_and_paravirt_calls(corpus: Corpus, images: Images) -> None:
    vmlinux = corpus.debian_vmlinux()
    image, symbols = images.get(vmlinux)
    finder = finder_for(image, symbols)
    # read_zero+0x5d: the vmlinux has `rep stosb` and NOPs; at run time an alternative
    # `call clear_user_erms` (the RIP of the same NMI backtrace) ends there.
    read_zero = images.symbol(vmlinux, "read_zero")
    site = finder.call_ending_at(read_zero.link_address + 0x5D, read_zero.link_address)
    assert site is not None and site.patch is PatchReason.ALTERNATIVE and site.is_call
    assert images.symbol(vmlinux, "clear_user_erms").link_address in site.possible_targets
    # do_set_pte+0x18e: 5 bytes into a 6-byte `call *pv_ops+N(%rip)` rewritten at boot.
    do_set_pte = images.symbol(vmlinux, "do_set_pte")
    site = finder.call_ending_at(do_set_pte.link_address + 0x18E, do_set_pte.link_address)
    assert site is not None and site.patch is PatchReason.PARAVIRT and site.length == 5
    assert len(site.raw) == 6 and site.kind is CallKind.INDIRECT
    assert read_zero.kallsyms_size is not None
    end = read_zero.link_address + read_zero.kallsyms_size
    reasons = {s.reason for s in patch_sites(image).overlapping(read_zero.link_address, end)}
    assert {PatchReason.ALTERNATIVE, PatchReason.RETURN_THUNK} <= reasons


def test_debian_retpoline_thunks_are_indirect(corpus: Corpus, images: Images) -> None:
    thunks = {
        site.thunk
        for frame, site in _debian_sites(corpus, images)
        if not frame["unreliable"] and site is not None and site.kind is CallKind.THUNK
    }
    assert thunks and all(str(name).startswith("__x86_indirect_thunk_") for name in thunks)


def test_call_sites_are_fast(corpus: Corpus, images: Images) -> None:
    frames = [
        f
        for f in _frames(corpus.debian / "expected" / "frames.json")
        if f["log"] == "console-sysrq.log" and f["role"] == "ret" and f["module"] is None
    ]
    vmlinux = corpus.debian_vmlinux()
    image, symbols = images.get(vmlinux)
    patch_sites(image)  # read once per image; not part of the per-frame cost
    finder = CallSiteFinder(image, symbols=symbols)
    starts = [int(str(f["symbol_address"]), 16) for f in frames]
    began = time.perf_counter()
    for frame, start in zip(frames, starts, strict=True):
        finder.call_ending_at(start + int(str(frame["offset"])), start)
    elapsed = time.perf_counter() - began
    assert len(frames) > 600 and elapsed < 1.0, elapsed


def _is_pt_regs_entry(lines: list[str], line_no: int) -> bool:
    """arm64 prints the interrupted pc as the entry after the exception vector
    (arch/arm64/kernel/stacktrace.c, 6.1): an exact address, not a return address."""
    return re.search(r"\bel[01][ht]_(64|32)_(irq|fiq|sync|error)\+", lines[line_no - 2]) is not None


# head_64.S pushes `.Lafter_lret` for the unwinder, then jumps to C code with `lretq`: the
# bottom entry of idle-task traces is a return address no call ends at.
NO_CALL_RETURN_ADDRESSES = {"secondary_startup_64_no_verify"}


# Reliable entries whose call is the caller's last instruction: x86 `rest_init+0xa0/0xa0` and
# `arch_call_rest_init+0x5/0x5` (clang; gcc pads after the noreturn call), arm64
# `kernel_init+0x0/0x1a8`-style entries (%pS names the next function).
LAST_CALL_ENTRIES = {"clang-thinlto": 2, "clang-nolto": 2, "gcc-nolto": 0, "arm64-clang-thinlto": 5}


@pytest.mark.parametrize("variant", [*X86_VARIANTS, "arm64-clang-thinlto"])
def test_kernels_reliable_return_addresses(variant: str, corpus: Corpus, images: Images) -> None:
    folder = corpus.kernels / variant
    lines = (folder / "console.log").read_text(errors="replace").splitlines()
    checked = noreturn = 0
    for frame in _frames(folder / "expected" / "frames.json"):
        if frame["role"] != "ret" or frame["unreliable"]:
            continue
        line_no = int(str(frame["line_no"]))
        if frame["symbol"] in NO_CALL_RETURN_ADDRESSES or _is_pt_regs_entry(lines, line_no):
            continue
        module = frame["module"]
        path = kernel_image(corpus, variant, module if isinstance(module, str) else None)
        image, symbols = images.get(path)
        symbol = images.symbol(
            path, str(frame.get("elf_name") or frame["symbol"]), int(str(frame["size"]))
        )
        return_address = symbol.link_address + int(str(frame["offset"]))
        site = finder_for(image, symbols).call_ending_at(return_address, symbol.link_address)
        assert site is not None and site.is_call, (frame["raw_line"], site)
        if frame["offset"] == frame["size"]:  # x86: a noreturn call ends the caller
            assert symbol.link_address <= site.call_site < return_address
            noreturn += 1
        if frame["offset"] == 0 and variant.startswith("arm64"):
            # arm64 %pS: after a noreturn `bl` the entry names the next function +0x0.
            assert site.call_site < symbol.link_address
            noreturn += 1
        checked += 1
    assert checked >= 200
    assert noreturn == LAST_CALL_ENTRIES[variant]


# -- real kernels: Code: lines ------------------------------------------------------------------


def _all_code_cases(corpus: Corpus) -> Iterator[tuple[str, CodeCase]]:
    for log in ("console-sysrq.log", "console-sysrq-nooops.log"):
        for case in code_cases(corpus.debian / "logs" / log):
            yield "debian", case
    for variant in (*X86_VARIANTS, "arm64-clang-thinlto"):
        for case in code_cases(corpus.kernels / variant / "console.log"):
            yield variant, case


def _image_path(corpus: Corpus, build: str, module: str | None) -> Path:
    if build == "debian":
        return debian_images(corpus, module)
    return kernel_image(corpus, build, module)


def test_code_lines_match_their_kernel(corpus: Corpus, images: Images) -> None:
    verdicts: dict[str, int] = {}
    for build, case in _all_code_cases(corpus):
        path = _image_path(corpus, build, case.module)
        image, symbols = images.get(path)
        arch = "arm64" if build.startswith("arm64") else "x86_64"
        symbol = images.symbol(path, case.symbol, case.size)
        fault = symbol.link_address + case.offset
        window = image_window(image, fault, len(case.code), case.marker_index, symbols)
        result = compare_code(case.code, case.marker_index, window, arch)
        verdicts[result.verdict.value] = verdicts.get(result.verdict.value, 0) + 1
        if not case.code or case.symbol == "data_area":
            # "Unable to access opcode bytes", or code executed from module .bss (lkdtm
            # EXEC_DATA): nothing in the image to compare with.
            assert result.verdict is CodeVerdict.UNKNOWN, (build, case)
            continue
        assert result.is_match and result.compared == len(case.code), (build, case, result)
        # The listing, guided by the image's instruction starts, agrees with a sweep of the
        # faulting function.
        listing = disassemble_code(
            case.code, case.marker_index, arch, fault, boundaries=window.boundaries
        )
        assert listing.fault is not None and listing.fault.is_valid
        finder = finder_for(image, symbols)
        patched = [(site.offset, site.offset + site.length) for site in result.patched_sites]
        for instruction in listing.instructions:
            address = instruction.link_address
            assert address is not None
            if any(low <= instruction.offset < high for low, high in patched):
                continue  # rewritten at boot: other instructions than the image's
            if instruction.is_valid and symbol.link_address <= address < symbol.end_address:
                assert finder.boundary_at_or_after(symbol.link_address, address) == address
    # 59 kernel-mode Code: lines: Debian 4 (+2 "Unable to access opcode bytes"), 16 per small
    # x86 kernel and 5 arm64; lkdtm EXEC_DATA runs from .bss once in each small kernel.
    assert verdicts.get("mismatch", 0) == 0
    assert verdicts.get("match", 0) + verdicts.get("patched-only", 0) == 53
    assert verdicts["unknown"] == 6


@pytest.mark.parametrize("variant", X86_VARIANTS)
def test_code_lines_do_not_match_another_build(
    variant: str, corpus: Corpus, images: Images
) -> None:
    other = OTHER_BUILD[variant]
    compared = 0
    for case in code_cases(corpus.kernels / variant / "console.log"):
        if not case.code or case.symbol == "data_area":
            continue
        path = kernel_image(corpus, other, case.module)
        image, symbols = images.get(path)
        # The same symbol+offset in the other build (sizes differ between builds).
        symbol = images.symbol(path, case.symbol)
        fault = symbol.link_address + case.offset
        window = image_window(image, fault, len(case.code), case.marker_index, symbols)
        result = compare_code(case.code, case.marker_index, window, "x86_64")
        assert result.verdict is CodeVerdict.MISMATCH, (variant, case.symbol, result)
        assert result.unexplained >= 4
        compared += 1
    assert compared >= 10


def test_arm64_code_does_not_match_another_function(corpus: Corpus, images: Images) -> None:
    path = kernel_image(corpus, "arm64-clang-thinlto", "lkdtm")
    image, symbols = images.get(path)
    compared = 0
    for case in code_cases(corpus.kernels / "arm64-clang-thinlto" / "console.log"):
        if case.module != "lkdtm" or case.symbol == "data_area" or not case.code:
            continue
        # A wrong duplicate candidate: the same offset in another lkdtm function.
        wrong = images.symbol(
            path, "lkdtm_ACCESS_NULL" if case.symbol != "lkdtm_ACCESS_NULL" else "lkdtm_WRITE_RO"
        )
        window = image_window(
            image, wrong.link_address + case.offset, len(case.code), case.marker_index, symbols
        )
        result = compare_code(case.code, case.marker_index, window, "arm64")
        assert result.verdict is CodeVerdict.MISMATCH, (case, result)
        compared += 1
    assert compared >= 3


# -- syzkaller: objdump's listing ---------------------------------------------------------------

OBJDUMP_LINE = re.compile(
    r"^(?P<fault>\*)?\s*(?P<offset>[0-9a-f]+):\s+(?P<bytes>(?:[0-9a-f]{2} )+|[0-9a-f]{8} )\s*"
    r"(?P<text>.*)$"
)


def _normalized(mnemonic: str, operands: str) -> tuple[str, str]:
    """AT&T text compared loosely: objdump drops size suffixes capstone prints (`movq` vs
    `mov`), writes `(%rdx,%rax,1)` and hex immediates, and 32-bit-wraps branch targets here."""
    text = re.sub(r"\s+", "", operands.split("//", maxsplit=1)[0].split("<--", maxsplit=1)[0])
    text = text.replace(",1)", ")")
    text = re.sub(r"\$(-?)(\d+)(?![x\d])", lambda m: f"${m[1]}{int(m[2]):#x}", text)
    text = re.sub(r"0x([0-9a-f]+)", lambda m: f"{int(m[1], 16) & 0xFFFFFFFF:#x}", text)
    return mnemonic, text


def _same_mnemonic(ours: str, theirs: str) -> bool:
    return ours == theirs or (ours[:-1] == theirs and ours[-1] in "bwlq")


@pytest.mark.parametrize(("arch", "case"), [("x86_64", "amd64/4"), ("arm64", "arm64/1")])
def test_listing_equals_objdump(arch: str, case: str, corpus: Corpus) -> None:
    folder = corpus.syzkaller / "decompile"
    log = (folder / f"{case}.in").read_text()
    expected = (folder / f"{case}.out").read_text().split("Code disassembly (best guess):")[1]
    code_text = next(line for line in log.splitlines() if line.startswith("Code:"))
    parsed = parse_code_text(code_text.removeprefix("Code:"))
    assert parsed is not None
    listing = disassemble_code(parsed[0], parsed[1], arch)
    rows = [m for line in expected.strip().splitlines() if (m := OBJDUMP_LINE.match(line))]
    assert len(rows) == len(listing.instructions)
    for row, instruction in zip(rows, listing.instructions, strict=True):
        assert int(row["offset"], 16) == listing.marker_index + instruction.offset
        assert bool(row["fault"]) == instruction.is_fault
        raw = row["bytes"].split()
        if arch == "arm64":
            assert int(raw[0], 16) == int.from_bytes(instruction.raw, "little")
        else:
            assert bytes.fromhex("".join(raw)) == instruction.raw
        mnemonic, _, operands = row["text"].strip().partition("\t")
        if " " in mnemonic and not operands:
            mnemonic, _, operands = mnemonic.partition(" ")
        ours = _normalized(instruction.mnemonic, instruction.op_str)
        theirs = _normalized(mnemonic.strip(), operands)
        assert _same_mnemonic(ours[0], theirs[0]), (ours, theirs)
        assert ours[1] == theirs[1], (ours, theirs)
