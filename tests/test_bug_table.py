"""The bug table (``__bug_table``) of real kernels and modules, and the WARN/BUG lines it gives.

At a ``WARN_ON``/``BUG`` trap the kernel prints the FILE:LINE of its bug table entry; DWARF's
line there may differ (corpus arm64 ``lkdtm_WARNING+0x18``: 86 where the WARN_ON is on 85,
``__list_add_valid+0x44``: line 0). Every frame at a WARNING or BUG site must give the line the
kernel printed, and keep DWARF's in a note.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SMALL_KERNELS, Corpus

from ltosyms.context import ModuleSet, Session
from ltosyms.decode.decode import Decoder
from ltosyms.elf.bug_table import bug_table
from ltosyms.elf.image import open_image
from ltosyms.elf.symtab import SymbolTable
from ltosyms.oops.parse import iter_reports

# x86 ud2 (arch/x86/include/asm/bug.h ASM_UD2); arm64 brk #0x800 (BUG_BRK_IMM,
# arch/arm64/include/asm/asm-bug.h), as the little-endian word d4210000.
TRAPS = {"x86_64": b"\x0f\x0b", "aarch64": bytes.fromhex("000021d4")}

# Entries: the section's size over 12 bytes (relative pointers with DEBUG_BUGVERBOSE); a
# module's whole table too. Distinct trap addresses are fewer where one trap has two entries.
TABLES = {
    "clang-thinlto": (3008, 15),
    "arm64-clang-thinlto": (3027, 15),
    "clang-thinlto-6.12": (3660, 16),
}


@pytest.mark.parametrize("variant", sorted(TABLES))
def test_every_entry_is_a_trap_with_a_file_and_line(corpus: Corpus, variant: str) -> None:
    for path, expected in zip(
        (corpus.kernel_vmlinux(variant), corpus.kernels / variant / "lkdtm.ko"),
        TABLES[variant],
        strict=True,
    ):
        image = open_image(path)
        section = image.get_section("__bug_table")
        assert section is not None and section.size == 12 * expected
        table = bug_table(image)
        assert len(table) == expected
        trap = TRAPS[image.machine]
        for entry in table:
            assert table.at(entry.link_address) == entry
            assert image.read(entry.link_address, len(trap)) == trap, (path, entry)
            assert entry.file is not None and entry.file.endswith((".c", ".h", ".S")), entry
            assert entry.line is not None and entry.line > 0


def test_lkdtm_entries_are_the_macros_lines(corpus: Corpus) -> None:
    # drivers/misc/lkdtm/bugs.c (6.1.192): BUG() on line 78, WARN_ON(1) on 85,
    # WARN(1, "Warning message trigger count: %d\n", ...) on 90; relocated from the .ko.
    for variant in ("clang-thinlto", "arm64-clang-thinlto", "gcc-lto"):
        image = open_image(corpus.kernels / variant / "lkdtm.ko")
        table = bug_table(image)
        symbols = SymbolTable(image)
        found = {}
        for name in ("lkdtm_BUG", "lkdtm_WARNING", "lkdtm_WARNING_MESSAGE"):
            (symbol,) = symbols.by_name(name)
            for address in range(symbol.link_address, symbol.link_address + symbol.elf_size):
                entry = table.at(address)
                if entry is not None:
                    found[name] = (entry.file, entry.line, entry.is_warning)
        assert found == {
            "lkdtm_BUG": ("drivers/misc/lkdtm/bugs.c", 78, False),
            "lkdtm_WARNING": ("drivers/misc/lkdtm/bugs.c", 85, True),
            "lkdtm_WARNING_MESSAGE": ("drivers/misc/lkdtm/bugs.c", 90, True),
        }, variant


# `WARNING: CPU: 1 PID: 174 at drivers/misc/lkdtm/bugs.c:85 lkdtm_WARNING+0xa/0x10 [lkdtm]`,
# `kernel BUG at drivers/misc/lkdtm/bugs.c:78!` (kernel/panic.c __warn, lib/bug.c report_bug).
_PRINTED = re.compile(r"(?:WARNING: .* at |kernel BUG at )(?P<file>\S+):(?P<line>\d+)")


def site_frames(vmlinux: Path, logs: list[Path], modules: Path) -> list[tuple[str, str, str]]:
    """(frame text, the FILE:LINE the report printed, ours) for every exact-IP frame at the
    address the report's WARNING/BUG names."""
    decoder = Decoder(Session(None).open_vmlinux(vmlinux), ModuleSet([modules]))
    found = []
    for log in logs:
        with log.open("rb") as file:
            for report in decoder.decode_all(iter_reports(file)):
                printed = _PRINTED.search(report.report.title)
                if printed is None:
                    continue
                ip = next(iter(report.ip_frames), None)
                site = ip.resolved.link_address if ip is not None and ip.resolved else None
                assert site is not None, report.report.title
                for frame in report.iter_frames():
                    resolved = frame.resolved
                    if (
                        resolved is None
                        or not frame.frame.exact_ip
                        or resolved.link_address != site
                        or frame.frame.module != ip.frame.module  # type: ignore[union-attr]
                    ):
                        continue
                    inner = resolved.locations[0] if resolved.locations else None
                    ours = f"{inner.file}:{inner.line}" if inner is not None else "-"
                    want = f"{printed['file']}:{printed['line']}"
                    found.append((frame.frame.raw_text.strip(), want, ours))
    return found


# Frames at a WARNING/BUG site per corpus kernel: the header, the RIP/pc line, and on arm64
# the first trace entry (%pS of the pc); BUG has no header frame.
SITE_FRAMES = {
    "clang-thinlto": 12,
    "clang-nolto": 12,
    "gcc-nolto": 12,
    "arm64-clang-thinlto": 14,
    "clang-thinlto-6.12": 12,
    "gcc-lto": 12,
    "debian": 4,
}


@pytest.mark.parametrize("variant", SMALL_KERNELS)
def test_warning_sites_give_the_printed_line(corpus: Corpus, variant: str) -> None:
    folder = corpus.kernels / variant
    frames = site_frames(corpus.kernel_vmlinux(variant), [folder / "console.log"], folder)
    assert [f for f in frames if f[1] != f[2]] == []
    assert len(frames) == SITE_FRAMES[variant]


@pytest.mark.slow
def test_debian_warning_sites_give_the_printed_line(corpus: Corpus) -> None:
    logs = [
        corpus.debian / "logs" / log for log in ("console-sysrq.log", "console-sysrq-nooops.log")
    ]
    frames = site_frames(corpus.debian_vmlinux(), logs, corpus.debian / "modules")
    assert [f for f in frames if f[1] != f[2]] == []
    assert len(frames) == SITE_FRAMES["debian"]


def test_dwarf_line_is_kept_in_a_note(corpus: Corpus) -> None:
    # arm64 lkdtm_WARNING+0x18: the WARN_ON is on bugs.c:85, DWARF gives 86 to the brk;
    # __list_add_valid+0x44: DWARF has line 0 at the brk, the kernel printed 29.
    folder = corpus.kernels / "arm64-clang-thinlto"
    decoder = Decoder(
        Session(None).open_vmlinux(corpus.kernel_vmlinux("arm64-clang-thinlto")),
        ModuleSet([folder]),
    )
    notes = {}
    with (folder / "console.log").open("rb") as file:
        for report in decoder.decode_all(iter_reports(file)):
            for frame in report.ip_frames:
                if frame.resolved is not None:
                    bug = [n for n in frame.resolved.notes if "bug table" in n]
                    notes[frame.frame.raw_text.split("pc : ")[-1].strip()] = bug
    assert notes["lkdtm_WARNING+0x18/0x20 [lkdtm]"] == [
        "line from the bug table (as the kernel prints it); DWARF: drivers/misc/lkdtm/bugs.c:86"
    ]
    assert notes["__list_add_valid+0x44/0xfc"] == [
        "line from the bug table (as the kernel prints it); DWARF: lib/list_debug.c:?"
    ]
    assert notes["lkdtm_EXCEPTION+0x4/0xc [lkdtm]"] == []


def test_damaged_module_relocations_name_nothing(corpus: Corpus, tmp_path: Path) -> None:
    """A relocation table whose size is no multiple of its entries: the module's bug table and
    the calls of that section are left unnamed (a warning), nothing fails."""
    from hostile_inputs import replace_sections

    from ltosyms.elf.relocations import module_relocations

    source = corpus.kernels / "clang-thinlto" / "lkdtm.ko"
    damaged = tmp_path / "lkdtm.ko"
    damaged.write_bytes(
        replace_sections(
            source.read_bytes(),
            {".rela__bug_table": b"\x01" * 25, ".rela.text.direct_entry": b"\x01" * 25},
        )
    )
    image = open_image(damaged)
    assert len(bug_table(image)) == 0
    text = image.get_section(".text.direct_entry")
    assert text is not None
    assert module_relocations(image).within(text.link_address, text.end_address) == []
    intact = open_image(source)
    intact_text = intact.get_section(".text.direct_entry")
    assert intact_text is not None
    assert (
        len(module_relocations(intact).within(intact_text.link_address, intact_text.end_address))
        == 11
    )
