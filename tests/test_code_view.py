"""``Code:`` listings in a developer's terms, on the real logs of the corpus.

The lines asserted here were read against ``objdump -dr`` / ``llvm-objdump -dr`` of the
images (the call and string each relocation names, the section sizes that make the padding).
Across every corpus log, each listed instruction must start where objdump (decoding from
its function's start) starts one, and no module listing may show an address of ltosyms'
private section layout.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SMALL_KERNELS, Corpus

from ltosyms.cli import cli
from ltosyms.context import ModuleSet, Session
from ltosyms.decode.decode import DecodedReport, Decoder
from ltosyms.disasm.decoder import X86_MAX_INSTRUCTION
from ltosyms.disasm.view import RowKind, ViewSource, marker_runtime_address
from ltosyms.elf.image import MODULE_BASE, KernelImage
from ltosyms.oops.parse import iter_reports
from ltosyms.render.code_listing import code_listing_lines, decodecode_lines

_decoded: dict[tuple[Path, ...], list[DecodedReport]] = {}


def decoded_reports(vmlinux: Path, logs: list[Path], modules: Path) -> list[DecodedReport]:
    key = (vmlinux, *logs)
    if key not in _decoded:
        decoder = Decoder(Session(None).open_vmlinux(vmlinux), ModuleSet([modules]))
        found = []
        for log in logs:
            with log.open("rb") as file:
                found += list(decoder.decode_all(iter_reports(file)))
        _decoded[key] = found
    return _decoded[key]


def kernel_reports(corpus: Corpus, variant: str) -> list[DecodedReport]:
    folder = corpus.kernels / variant
    return decoded_reports(corpus.kernel_vmlinux(variant), [folder / "console.log"], folder)


def debian_reports(corpus: Corpus) -> list[DecodedReport]:
    logs = [corpus.debian / "logs" / log for log in ("console-sysrq.log",)]
    return decoded_reports(corpus.debian_vmlinux(), logs, corpus.debian / "modules")


def listing_at(reports: list[DecodedReport], code_text: str) -> list[str]:
    """The listing of the first report whose ``Code:`` line starts with ``code_text``."""
    for report in reports:
        code, printed = report.code, report.report.code
        if printed is not None and printed.raw_text.startswith(code_text):
            assert code is not None and code.listing is not None
            return list(code_listing_lines(code.listing, code.view, code.marker_runtime_address))
    raise AssertionError(f"no Code: listing for {code_text}")


def test_x86_module_listing(corpus: Corpus) -> None:
    # lkdtm WARNING on clang ThinLTO: every function in its own section, the sections laid
    # out by the loader with zero-filled gaps; calls and strings named by the .ko's
    # relocations (R_X86_64_PLT32 panic-0x4, R_X86_64_32S .rodata+0xdb7, PC32 .bss+0x37 =
    # warn_counter).
    assert listing_at(
        kernel_reports(corpus, "clang-thinlto"), "Code: 48 c7 c7 17 be 32 c0 e8 43"
    ) == [
        "  lkdtm_PANIC:                48 c7 c7 17 be 32 c0  movq   $0xffffffffc032be17, %rdi"
        '  # .rodata+0xdb7 "dumptest"',
        "  lkdtm_PANIC+0x7:            e8 43 f3 71 fa        call   panic",
        "  lkdtm_PANIC+0xc:            00 00 00 00           (padding between functions)",
        "  lkdtm_BUG:                  0f 0b                 ud2",
        "  lkdtm_BUG+0x2:              00 00 00 00 00 00 00 ... (padding between functions)",
        "  lkdtm_WARNING:              83 05 d5 9d 00 00 01  addl   $1, 0x9dd5(%rip)"
        "  # warn_counter",
        "  lkdtm_WARNING+0x7:          75 01                 jne    lkdtm_WARNING+0xa",
        "  lkdtm_WARNING+0x9:          c3                    ret",
        "* lkdtm_WARNING+0xa:          0f 0b                 ud2\t<-- trapping instruction",
        "  lkdtm_WARNING+0xc:          c3                    ret",
        "  lkdtm_WARNING+0xd:          00 00 00              (padding between functions)",
        "  lkdtm_WARNING_MESSAGE:      8b 35 c6 9d 00 00     movl   0x9dc6(%rip), %esi"
        "  # warn_counter",
        "  lkdtm_WARNING_MESSAGE+0x6:  83 c6 01              addl   $1, %esi",
        "  lkdtm_WARNING_MESSAGE+0x9:  89 35 bd 9d 00 00     movl   %esi, 0x9dbd(%rip)"
        "  # warn_counter",
        "  lkdtm_WARNING_MESSAGE+0xf:  48                    movq   $0, %rdi"
        '  # .rodata+0x2139 "Warning message trigger count: %d\\n"'
        "  (cut: the line ends inside it)",
    ]


def test_arm64_module_listing(corpus: Corpus) -> None:
    # lkdtm BUG on arm64: `bl panic` (R_AARCH64_CALL26), adrp/add of .rodata+0xc71 (the
    # ADR_PREL_PG_HI21 / ADD_ABS_LO12_NC pair), not `bl #0x...` or a page of ltosyms' layout.
    assert listing_at(kernel_reports(corpus, "arm64-clang-thinlto"), "Code: 910003fd b0000020") == [
        "  lkdtm_PANIC+0x4:   910003fd              mov    x29, sp",
        '  lkdtm_PANIC+0x8:   b0000020              adrp   x0, .rodata+0xc71  # "dumptest"',
        "  lkdtm_PANIC+0xc:   913ac400              add    x0, x0, #0xeb1"
        '  # .rodata+0xc71 "dumptest"',
        "  lkdtm_PANIC+0x10:  97fffc81              bl     panic",
        "* lkdtm_BUG:         d4210000              brk    #0x800\t<-- trapping instruction",
    ]


@pytest.mark.slow
def test_vmlinux_listing_and_unreadable_code(corpus: Corpus) -> None:
    reports = debian_reports(corpus)
    # clear_user_erms (NMI backtrace): the line starts inside `rep stosq` of the previous
    # function (decoded whole from the image), `ret` was `jmp __x86_return_thunk` in the image.
    listing = listing_at(reports, "Code: ab 83 e2 07")
    assert listing[0] == (
        "  clear_user_rep_good+0x10:  ab                    rep stosq %rax, (%rdi)"
        "  (cut: starts at clear_user_rep_good+0xe, before the line)"
    )
    assert listing[6] == (
        "  clear_user_rep_good+0x1c:  c3                    ret  # image: jmp __x86_return_thunk"
    )
    assert listing[17] == (
        "  clear_user_erms+0x4:       0f 82 76 ff ff ff     jb     clear_user_original"
    )
    assert listing[18] == (
        "* clear_user_erms+0xa:       f3 aa                 rep stosb %al, (%rdi)"
        "\t<-- trapping instruction"
    )
    assert listing[-1] == (
        "  clear_user_erms+0x13:      cc cc cc cc cc cc cc ... (padding between functions)"
    )
    # tracegen's oops: the kernel could not read the bytes; RIP = the address it names + 42.
    assert listing_at(reports, "Code: Unable to access opcode bytes") == [
        "Code: the kernel printed no Code: bytes; tg_store as tracegen has it:",
        "  ffffffffc03a4000 tg_store:      e8 00 00 00 00        call   __fentry__",
        "* ffffffffc03a4005 tg_store+0x5:  89 37                 movl   %esi, (%rdi)"
        "\t<-- trapping instruction",
        "  ffffffffc03a4007 tg_store+0x7:  e9 00 00 00 00        jmp    __x86_return_thunk",
    ]


def test_ip_in_data_is_not_listed(corpus: Corpus) -> None:
    reports = kernel_reports(corpus, "clang-thinlto")
    assert listing_at(reports, "Code: 00 00 00 00 00 00 00 00 00 00 00 4a") == [
        "Code: not listed: the IP is in data object data_area (.bss); "
        "the CPU was made to execute data"
    ]


def test_decode_stacktrace_expands_code_as_decodecode(corpus: Corpus) -> None:
    report = next(r for r in kernel_reports(corpus, "clang-thinlto") if r.report.code is not None)
    assert report.code is not None and report.code.listing is not None
    lines = decodecode_lines(report.code.listing, report.code.view)
    assert lines[:4] == [
        "All code",
        "========",
        '   0:\t48 c7 c7 17 be 32 c0 \tmovq   $0xffffffffc032be17,%rdi  # .rodata+0xdb7 "dumptest"',
        "   7:\te8 43 f3 71 fa       \tcall   panic",
    ]
    assert "  12:\t00 00 00 00 00 00 00 \t(padding between functions)" in lines
    assert "  19:\t00 00 00 00 00 00 00 " in lines  # objdump's continuation line
    assert "  2a:*\t0f 0b                \tud2\t\t<-- trapping instruction" in lines
    start = lines.index("Code starting with the faulting instruction")
    assert lines[start - 1] == ""
    assert lines[start + 1 : start + 4] == [
        "===========================================",
        "   0:\t0f 0b                \tud2",
        "   2:\tc3                   \tret",
    ]
    # The command: the Code: line echoed with its blanks collapsed, then the expansion.
    result = CliRunner().invoke(
        cli,
        [
            "decode",
            str(corpus.kernel_vmlinux("clang-thinlto")),
            str(corpus.kernels / "clang-thinlto" / "console.log"),
            "--modules",
            str(corpus.kernels / "clang-thinlto"),
            "--no-cache",
            "--format",
            "decode-stacktrace",
        ],
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    echoed = out.index(
        "[ 1.327007] Code: 48 c7 c7 17 be 32 c0 e8 43 f3 71 fa 00 00 00 00 0f 0b "
        "00 00 00 00 00 00 00 00 00 00 00 00 00 00 83 05 d5 9d 00 00 01 75 01 c3 "
        "<0f> 0b c3 00 00 00 8b 35 c6 9d 00 00 83 c6 01 89 35 bd 9d 00 00 48"
    )
    assert out[echoed + 1 : echoed + 1 + len(lines)] == lines


# -- oracles over every corpus log ------------------------------------------------------------

_OBJDUMP_START = re.compile(r"^\s*(?P<offset>[0-9a-f]+):\s")
_SECTION = re.compile(r"^Disassembly of section (?P<name>\S+):")


@cache
def _module_starts(path: Path, machine: str) -> frozenset[tuple[str, int]]:
    """(section, offset) of every instruction objdump decodes in a .ko."""
    tool = "objdump" if machine == "x86_64" else "llvm-objdump"
    output = subprocess.run(
        [tool, "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True, check=True
    ).stdout
    starts = set()
    section = ""
    for line in output.splitlines():
        if (match := _SECTION.match(line)) is not None:
            section = match["name"]
        elif (match := _OBJDUMP_START.match(line)) is not None:
            starts.add((section, int(match["offset"], 16)))
    return frozenset(starts)


def _vmlinux_starts(image: KernelImage, function_start: int, end: int) -> set[int]:
    tool = "objdump" if image.machine == "x86_64" else "llvm-objdump"
    output = subprocess.run(
        [
            tool,
            "-d",
            "--no-show-raw-insn",
            f"--start-address={function_start:#x}",
            f"--stop-address={end:#x}",
            str(image.path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        int(match["offset"], 16)
        for line in output.splitlines()
        if (match := _OBJDUMP_START.match(line)) is not None
    }


def starts_checked(decoder_reports: list[DecodedReport], decoder: Decoder) -> int:
    """Instructions of matching listings, each checked to start where objdump starts one."""
    checked = 0
    for report in decoder_reports:
        code = report.code
        if code is None or code.listing is None or code.view is None or code.match is None:
            continue
        if not code.match.is_match or code.view.source is not ViewSource.LOG:
            continue
        module = None if code.image == "vmlinux" else code.image
        resolver = decoder.resolver(module, None)
        assert resolver is not None
        image = resolver.image
        patched_until = 0
        for instruction, row in zip(code.listing.instructions, code.view.rows, strict=True):
            if row.kind is not RowKind.INSTRUCTION or instruction.link_address is None:
                continue
            link = instruction.link_address
            if row.comment is not None and row.comment.startswith("image: "):
                patched_until = link + len(instruction.raw) + X86_MAX_INSTRUCTION
            if link < patched_until and image.read(link, len(instruction.raw)) != instruction.raw:
                # Written at boot (`ret; int3` over `jmp __x86_return_thunk`): the image's
                # instructions there are others.
                continue
            if image.is_module:
                section = image.section_at(link)
                assert section is not None
                place = (section.name, link - section.link_address)
                assert place in _module_starts(image.path, image.machine), (row, place)
            else:
                function = resolver.symbols.lookup(link)
                assert function is not None
                starts = _vmlinux_starts(image, function.link_address, link + 1)
                assert link in starts, row
            checked += 1
    return checked


# Instructions of the matching Code: listings of each corpus kernel's log.
LISTED = {
    "clang-thinlto": 133,
    "clang-nolto": 133,
    "gcc-nolto": 132,
    "arm64-clang-thinlto": 20,
    "clang-thinlto-6.12": 116,
    "gcc-lto": 121,
    "debian": 44,
}
_ORACLES = pytest.mark.skipif(
    shutil.which("objdump") is None or shutil.which("llvm-objdump") is None,
    reason="objdump and llvm-objdump (the oracles) are needed",
)


def _decode_for_starts(vmlinux: Path, logs: list[Path], modules: Path) -> int:
    decoder = Decoder(Session(None).open_vmlinux(vmlinux), ModuleSet([modules]))
    reports = []
    for log in logs:
        with log.open("rb") as file:
            reports += list(decoder.decode_all(iter_reports(file)))
    return starts_checked(reports, decoder)


@_ORACLES
@pytest.mark.parametrize("variant", SMALL_KERNELS)
def test_listed_instructions_start_where_objdump_starts_one(corpus: Corpus, variant: str) -> None:
    folder = corpus.kernels / variant
    checked = _decode_for_starts(corpus.kernel_vmlinux(variant), [folder / "console.log"], folder)
    assert checked == LISTED[variant]


@_ORACLES
@pytest.mark.slow
def test_debian_listed_instructions_start_where_objdump_starts_one(corpus: Corpus) -> None:
    logs = [
        corpus.debian / "logs" / log for log in ("console-sysrq.log", "console-sysrq-nooops.log")
    ]
    checked = _decode_for_starts(corpus.debian_vmlinux(), logs, corpus.debian / "modules")
    assert checked == LISTED["debian"]


_HEX = re.compile(r"\b(?:0x)?([0-9a-f]{5,16})\b")


@pytest.mark.parametrize("variant", SMALL_KERNELS)
def test_no_module_layout_address_in_listings_or_calls(corpus: Corpus, variant: str) -> None:
    """Module Code: listings and call lines name places; JSON gives no link address there."""
    folder = corpus.kernels / variant
    result = CliRunner().invoke(
        cli,
        [
            "decode",
            str(corpus.kernel_vmlinux(variant)),
            str(folder / "console.log"),
            "--modules",
            str(folder),
            "--no-cache",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    module_end = MODULE_BASE + 0x40000  # lkdtm's layout spans less than 0x30000 bytes
    checked = 0
    for report in document["reports"]:
        code = report["code"]
        if code is not None and code["image"] not in (None, "vmlinux"):
            assert code["fault_address"] is None
            for instruction in code["instructions"]:
                assert instruction["address"] is None
                if instruction["target"] is not None or instruction["kind"] != "instruction":
                    text = f"{instruction['operands']} {instruction['text'] or ''}"
                    for number in _HEX.findall(text):
                        assert not MODULE_BASE <= int(number, 16) < module_end, instruction
                checked += 1
        for frame in report["frames"]:
            resolved = frame["resolved"]
            if frame["module"] is None or resolved is None or resolved["call_target"] is None:
                continue
            assert resolved["call_target"]["address"] is None
            for number in _HEX.findall(resolved["call_instruction"] or ""):
                assert not MODULE_BASE <= int(number, 16) < module_end, resolved
            checked += 1
    assert checked > 0


def test_runtime_addresses_where_the_log_gives_them(corpus: Corpus) -> None:
    # vmlinux: link address plus the KASLR offset; a module only from a printed address (a
    # raw RIP, or the start an unreadable x86 Code: line names: RIP - 42), never by KASLR.
    link = 0xFFFFFFFF811BDD46
    assert marker_runtime_address("x86_64", None, None, link, 0x16800000, False) == (
        0xFFFFFFFF979BDD46
    )
    assert marker_runtime_address("x86_64", None, None, 0x1032A, 0x16800000, True) is None
    assert marker_runtime_address("x86_64", 0xFFFFFFFFC03A3FDB, None, 0x10005, None, True) == (
        0xFFFFFFFFC03A4005
    )
    assert marker_runtime_address("aarch64", 0xFFFFFFDE30E01E8C, None, 0x10378, None, True) is None
    reports = kernel_reports(corpus, "clang-thinlto")
    code = next(r.code for r in reports if r.code is not None and r.code.image == "vmlinux")
    assert code is not None and code.listing is not None and code.listing.marker_index == 42
    assert code.listing.marker_link_address is not None
    runtime = code.listing.marker_link_address + 0x3A400000
    lines = list(code_listing_lines(code.listing, code.view, runtime))
    fault = next(line for line in lines if line.startswith("*"))
    assert fault.startswith(f"* {runtime:016x} __list_add_valid+0x30:")
    assert lines[0].startswith(f"  {runtime - 42:016x} __list_add_valid+0x6:")
