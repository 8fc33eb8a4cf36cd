"""Synthesize oops logs from the real call sites of the corpus kernels, with oracle answers.

The corpus logs hold only a few LTO-renamed and duplicate-name frames. This generator writes
regression suites (``tests/data/synth/<kernel>.json``) that hold many, built from real code:

* **suffixed** cases, per naming style: for functions with a suffix (``name.llvm.N``,
  ``name.lto_priv.N``, ``.cold``, ``.part.N``, full LTO's ``name.N``) that contain a call, a
  return-address frame ``name+0xRET/0xSIZE`` with the name printed as one era of
  kernel/kallsyms.c ``cleanup_symbol_name()`` prints it (``exact``: 6.11+ and gcc;
  ``llvm-cut``: 6.1.42+; ``first-dot``: 5.16 - 6.1.41; ``gcc-lto-numeric``: the out-of-tree gcc
  LTO series' filter), where RET is the address after a real call inside it; when that call
  is direct, the callee's ``RIP:`` line, printed the same way, comes first. A report holds
  one style.
* **duplicate** cases: for every text name that several copies print as (``name_show`` x6,
  ``jhash`` x17 in the Debian vmlinux), a ``RIP:`` line inside a copy followed by the
  return-address frame of a real direct caller of that copy (*callee* cases), and a copy's own
  return-address frame after a real call inside it, preceded by the callee's ``RIP:`` line
  (*caller* cases).

Cases are packed a few dozen per report; every case after the first starts with a ``RIP:``
line inside the ``Call Trace`` (the shape of a ``pt_regs`` block printed inside a trace), so
the frame before each return-address frame is its real callee.

Independent answers, per frame: the ELF symbol (from ``readelf``) and the kallsyms size (from
the kernel's own ``System.map`` or a real ``/proc/kallsyms``); the call site, found with
capstone by a linear sweep from the symbol start; the inline chain from ``llvm-symbolizer
--inlining`` at the call site (return addresses) or at the exact address (``RIP:``), paths
relative to the source tree; and which copies the evidence can tell apart among every code
symbol some era prints with the frame's name (:meth:`Synthesizer.resolve_evidence`; in
``alone`` without the neighbouring frames, as ``symbolize`` sees a frame): the printed size,
whether a call instruction ends at ``copy + offset`` (an instruction starts there for an exact
IP), and between adjacent frames whether the caller's direct call enters the callee. What the
evidence cannot separate stays in ``survivors``; a decoder must then report the frame as
ambiguous with exactly those copies.

Usage::

    python tools/synth_traces.py [KERNEL ...] [--out tests/data/synth] [--max-cases N]
    python tools/synth_traces.py --vmlinux VMLINUX [--system-map SYSTEM.MAP] [--name NAME]
        [--own-style STYLE] [--styles STYLE,...] --out DIR [--max-cases N] [--every-call]

KERNEL is ``clang-thinlto``, ``clang-thinlto-6.12``, ``gcc-nolto``, ``gcc-lto``,
``arm64-clang-thinlto``, ``debian`` or ``clang-lto-sample`` (testdata's clang full-LTO image;
default: all). ``--vmlinux`` takes a kernel outside the corpus instead (a clang full-LTO 6.1
built to measure the first-dot era on): its ``CPU:`` lines print its build id
(``CONFIG_STACKTRACE_BUILD_ID``), ``--own-style`` says how it prints its duplicate cases and
``--styles`` which styles its suffixed cases are printed in; ``tools/era_accuracy.py --vmlinux``
measures the suite. ``--max-cases`` bounds the suffixed cases per style (default 200: a
deterministic sample that keeps the files small, ~1 MB for all suites; ``0`` writes every
case, which ``tools/era_accuracy.py`` can measure); the Debian suite keeps 300 duplicate cases,
one per duplicated name. ``--every-call`` writes a suffixed case for every real call inside
each function (every return address an oops can print inside it), not one per function.
The corpus is ``../shared/corpus`` or ``$LTOSYMS_CORPUS``. Output is deterministic.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import os
import posixpath
import random
import struct
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from ltosyms.disasm.decoder import (  # noqa: E402
    AARCH64,
    X86_64,
    RawInstruction,
    direct_target,
    is_call,
    iter_instructions,
)

SCHEMA = "ltosyms.synth/2"
FRAME_FIELDS = (
    "line",  # 1-based line of the log
    "kind",  # callee, dup-callee: exact IPs (RIP:/pc :); suffixed, caller, dup-caller: return
    # addresses (see the module docstring)
    "style",  # how the frame prints its name: exact, llvm-cut, first-dot, gcc-lto-numeric
    "symbol",  # the ELF name of the symbol the frame means
    "address",  # its link address
    "call_site",  # return addresses: the call instruction ending there
    "candidates",  # every listed symbol printed with this frame's name ([] when only one)
    "survivors",  # indexes into candidates: what the evidence cannot reject
    "alone",  # the same from the frame alone (no neighbouring frame), as symbolize sees it
    "chain",  # llvm-symbolizer: [[function, index into files, line], ...] innermost first
)
# Addresses in the suite are hex offsets from the suite's "address_base" (_text), to keep
# the files small.

# Paths in DWARF carry the build's directory; users (and ltosyms) show them relative to the
# kernel source tree.
BUILD_PREFIXES = (
    "/build/lb/kernels/src/linux-source-6.1/",
    "/build/k612/src/linux-source-6.12/",
    "/build/gcclto01/src/linux-source-6.1/",
    "/usr/src/linux-sample/",  # testdata/vmlinux-samples/build.sh
    "/build/reproducible-path/linux-6.1.192/",
    "debian/build/build_amd64_none_cloud-amd64/",
)

CASES_PER_REPORT = 24

# Calls the running kernel does not have: ftrace's mcount call is a NOP after boot
# (arch/x86/kernel/ftrace.c ftrace_init), so no return address ever follows it.
NOT_REAL_CALL_TARGETS = ("__fentry__", "mcount", "_mcount")
# A call to these is an indirect call (arch/x86/lib/retpoline.S).
THUNK_PREFIXES = (
    "__x86_indirect_thunk_",
    "__x86_indirect_call_thunk_",
    "__x86_indirect_its_thunk_",
)
# Static-call trampolines (include/linux/static_call_types.h): the function entered is the
# call's current target, patched at boot.
STATIC_CALL_TRAMPOLINE_PREFIX = "__SCT__"


# -- kernels ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelSpec:
    name: str
    get_vmlinux: tuple[str, ...]  # script and arguments printing the vmlinux path
    kallsyms_list: Path | None  # System.map or a real /proc/kallsyms; None: `nm -n` of it
    own_style: str  # how this kernel itself prints names (STYLES)
    styles: tuple[str, ...]  # the styles its suffixed functions are printed in
    duplicate_cases: bool
    # Debian has 300 duplicated text names: 300 cases keep one of each (round-robin).
    duplicate_bound: int | None = None
    # CONFIG_STACKTRACE_BUILD_ID: the CPU: line ends with the build id (the small corpus
    # kernels have it, Debian's and the sample have not).
    prints_build_id: bool = True
    # How the suite's "generator" field says to write it again.
    arguments: str = ""

    @property
    def generator_arguments(self) -> str:
        return self.arguments or self.name


# How a kernel prints an ELF name, per naming era (kernel/kallsyms.c cleanup_symbol_name();
# written here from the kernel source, not taken from ltosyms):
#   exact:     no cleanup (gcc builds; clang LTO up to 5.15 and from 6.10.7/6.11)
#   llvm-cut:  strstr(s, ".llvm.") cut (6.1.42+, 6.4.7+, 6.5 - 6.10.6)
#   first-dot: strchr(s, '.') cut (5.16 - 6.1.41, 6.2 - 6.4.6)
#   gcc-lto-numeric: the out-of-tree gcc LTO series' filter of numeric ".NNNNN" postfixes
STYLES = ("exact", "llvm-cut", "first-dot", "gcc-lto-numeric")


def printed_as(name: str, style: str) -> str:
    if style == "llvm-cut":
        cut = name.find(".llvm.")
        return name if cut < 0 else name[:cut]
    if style == "first-dot":
        cut = name.find(".")
        return name if cut < 0 else name[:cut]
    if style == "gcc-lto-numeric":
        stem, dot, tail = name.rpartition(".")
        return stem if dot and tail.isdigit() else name
    return name


def kernel_specs(corpus: Path) -> dict[str, KernelSpec]:
    kernels = corpus / "kernels"
    debian = corpus / "debian-6.1.0-57-cloud-amd64"
    script = str(kernels / "get-vmlinux.sh")
    return {
        "clang-thinlto": KernelSpec(
            "clang-thinlto",
            (script, "clang-thinlto"),
            kernels / "clang-thinlto" / "System.map",
            "llvm-cut",
            ("exact", "llvm-cut", "first-dot"),
            duplicate_cases=True,
        ),
        "clang-thinlto-6.12": KernelSpec(
            "clang-thinlto-6.12",
            (script, "clang-thinlto-6.12"),
            kernels / "clang-thinlto-6.12" / "System.map",
            "exact",
            ("exact", "llvm-cut", "first-dot"),
            duplicate_cases=True,
        ),
        "gcc-nolto": KernelSpec(
            "gcc-nolto",
            (script, "gcc-nolto"),
            kernels / "gcc-nolto" / "System.map",
            "exact",
            ("exact", "first-dot"),
            duplicate_cases=True,
        ),
        "gcc-lto": KernelSpec(
            "gcc-lto",
            (script, "gcc-lto"),
            kernels / "gcc-lto" / "System.map",
            "exact",
            ("exact", "first-dot", "gcc-lto-numeric"),
            duplicate_cases=True,
        ),
        "arm64-clang-thinlto": KernelSpec(
            "arm64-clang-thinlto",
            (script, "arm64-clang-thinlto"),
            kernels / "arm64-clang-thinlto" / "System.map",
            "llvm-cut",
            ("llvm-cut",),
            duplicate_cases=False,
        ),
        "debian": KernelSpec(
            "debian",
            (str(debian / "get-vmlinux.sh"),),
            debian / "kallsyms" / "proc-kallsyms.txt",
            "exact",
            (),
            duplicate_cases=True,
            duplicate_bound=300,
            prints_build_id=False,
        ),
        # The clang full-LTO sample of testdata: statics renamed name.N; its banner says
        # 6.1.0, so it prints first-dot names itself.
        "clang-lto-sample": KernelSpec(
            "clang-lto-sample",
            ("echo", str(PROJECT / "testdata" / "vmlinux-samples" / "vmlinux-clang-lto")),
            None,
            "first-dot",
            ("exact", "first-dot"),
            duplicate_cases=True,
            prints_build_id=False,
        ),
    }


def kernel_by_path(
    name: str, vmlinux: Path, system_map: Path | None, own_style: str, styles: Sequence[str]
) -> KernelSpec:
    """A kernel outside the corpus (one built to measure an era on, say a clang full-LTO
    6.1): its vmlinux, its System.map (without one, ``nm -n`` of the vmlinux), how it prints
    names itself and the styles its suffixed functions are printed in."""
    arguments = f"--name {name} --vmlinux {vmlinux.name}"
    if system_map is not None:
        arguments += f" --system-map {system_map.name}"
    arguments += f" --own-style {own_style} --styles {','.join(styles)}"
    return KernelSpec(
        name,
        ("echo", str(vmlinux)),
        system_map,
        own_style,
        tuple(styles),
        duplicate_cases=True,
        arguments=arguments,
    )


def vmlinux_path(spec: KernelSpec) -> Path:
    command = list(spec.get_vmlinux)
    if command[0] != "echo":
        command = ["sh", *command]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    return Path(result.stdout.strip().splitlines()[-1])


# -- symbols -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ElfSymbol:
    name: str
    link_address: int
    elf_size: int
    type: str  # FUNC, OBJECT, NOTYPE...


def read_elf_symbols(vmlinux: Path) -> list[ElfSymbol]:
    """Defined symbols from ``readelf -sW`` (binutils), the ELF side of the oracle."""
    output = subprocess.run(
        ["readelf", "-sW", str(vmlinux)], capture_output=True, text=True, check=True
    ).stdout
    symbols = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 8 or not parts[0][:-1].isdigit() or parts[6] in ("UND", "ABS"):
            continue
        size = int(parts[2], 16) if parts[2].startswith("0x") else int(parts[2])
        symbols.append(ElfSymbol(parts[7], int(parts[1], 16), size, parts[3]))
    return symbols


@dataclass(frozen=True, slots=True)
class KallsymsEntry:
    name: str
    link_address: int
    letter: str
    position: int  # order in the list


class Kallsyms:
    """The kernel's symbol list (``System.map`` or ``/proc/kallsyms``) at link addresses.

    The size an oops prints is the distance to the next listed symbol with a higher address
    (kernel/kallsyms.c ``get_symbol_pos``, 6.1)."""

    def __init__(self, entries: list[KallsymsEntry]) -> None:
        self.entries = entries
        self.addresses = sorted({e.link_address for e in entries})
        self.at: dict[int, list[KallsymsEntry]] = {}
        for entry in entries:
            self.at.setdefault(entry.link_address, []).append(entry)
        self.by_name: dict[str, list[KallsymsEntry]] = {}
        for entry in entries:
            self.by_name.setdefault(entry.name, []).append(entry)

    def size_at(self, link_address: int) -> int | None:
        position = bisect.bisect_right(self.addresses, link_address)
        if position >= len(self.addresses):
            return None
        return self.addresses[position] - link_address

    def containing(self, link_address: int) -> int | None:
        """Start address of the listed symbol whose extent holds ``link_address``."""
        position = bisect.bisect_right(self.addresses, link_address) - 1
        if position < 0 or position + 1 >= len(self.addresses):
            return None
        return self.addresses[position]


def read_kallsyms(path: Path | None, vmlinux: Path, elf_symbols: Sequence[ElfSymbol]) -> Kallsyms:
    """Read a System.map or /proc/kallsyms; runtime addresses are moved to link time by the
    offset of ``_stext`` (KASLR), module symbols (``[mod]``) are left out. Without a list,
    ``nm -n`` of the image is its System.map (scripts/mksysmap drops what is left out below)."""
    if path is None:
        text = subprocess.run(
            ["nm", "-n", str(vmlinux)], capture_output=True, text=True, check=True
        ).stdout
    else:
        text = path.read_text(errors="replace")
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        rows.append((int(parts[0], 16), parts[1], parts[2]))
    runtime_stext = next(a for a, _, n in rows if n == "_stext")
    link_stext = next(s.link_address for s in elf_symbols if s.name == "_stext")
    offset = runtime_stext - link_stext
    entries = [
        KallsymsEntry(name, address - offset, letter, index)
        for index, (address, letter, name) in enumerate(rows)
        if letter not in "aAuUnNw"  # absolute, per-CPU, weak undefined: not code
    ]
    return Kallsyms(entries)


# -- code --------------------------------------------------------------------------------------


class Code:
    """Executable bytes of the vmlinux and linear sweeps of its functions (capstone)."""

    def __init__(self, vmlinux: Path, arch: str) -> None:
        self.arch = arch
        self.sections: list[tuple[int, bytes]] = []
        with vmlinux.open("rb") as file:
            elf = ELFFile(file)
            for section in elf.iter_sections():
                flags = section["sh_flags"]
                if flags & 0x4 and flags & 0x2 and section["sh_type"] == "SHT_PROGBITS":
                    self.sections.append((section["sh_addr"], section.data()))
            self.build_id = _build_id(elf)
            self.little_endian = elf.little_endian
        self._sweeps: dict[int, list[RawInstruction]] = {}

    def read(self, link_address: int, length: int) -> bytes:
        for start, data in self.sections:
            if start <= link_address < start + len(data):
                return data[link_address - start : link_address - start + length]
        return b""

    def sweep(self, start: int, end: int) -> list[RawInstruction]:
        """Instructions from ``start`` up to ``end`` (fewer when capstone stops early)."""
        cached = self._sweeps.get(start)
        if cached is not None and (not cached or cached[-1][0] + cached[-1][1] >= end):
            return [i for i in cached if i[0] < end]
        instructions = list(iter_instructions(self.arch, self.read(start, end - start), start))
        self._sweeps[start] = instructions
        return instructions

    def instruction_ending_at(
        self, function_start: int, function_end: int, return_address: int
    ) -> RawInstruction | None:
        """The instruction that ends exactly at ``return_address``, None when none does."""
        if self.arch == AARCH64:
            found = list(
                iter_instructions(self.arch, self.read(return_address - 4, 4), return_address - 4)
            )
            return found[0] if found else None
        for instruction in self.sweep(function_start, max(function_end, return_address)):
            if instruction[0] + instruction[1] == return_address:
                return instruction
            if instruction[0] >= return_address:
                break
        return None

    def direct_calls(self, targets: set[int]) -> dict[int, list[int]]:
        """Call-instruction addresses of every ``call rel32`` / ``bl`` to one of ``targets``
        (byte scan; boundaries are checked later by a sweep of the calling function)."""
        found: dict[int, list[int]] = {}
        endian = "<" if self.little_endian else ">"
        for start, data in self.sections:
            if self.arch == X86_64:
                position = data.find(b"\xe8")
                while 0 <= position <= len(data) - 5:
                    (relative,) = struct.unpack_from("<i", data, position + 1)
                    target = start + position + 5 + relative
                    if target in targets:
                        found.setdefault(target, []).append(start + position)
                    position = data.find(b"\xe8", position + 1)
            else:
                for position in range(0, len(data) - 3, 4):
                    (word,) = struct.unpack_from(endian + "I", data, position)
                    if word >> 26 != 0b100101:  # BL imm26 (Arm ARM C6.2.34)
                        continue
                    imm = word & 0x3FFFFFF
                    if imm & 0x2000000:
                        imm -= 0x4000000
                    target = start + position + imm * 4
                    if target in targets:
                        found.setdefault(target, []).append(start + position)
        return found


def _build_id(elf: ELFFile) -> str | None:
    for section in elf.iter_sections():
        if not isinstance(section, NoteSection):
            continue
        for note in section.iter_notes():
            if note["n_name"] == "GNU" and note["n_type"] == "NT_GNU_BUILD_ID":
                return str(note["n_desc"])
    return None


# -- frames and cases ----------------------------------------------------------------------------


@dataclass
class SynthFrame:
    kind: str
    role: str  # ip | ret
    printed: str  # name+0xOFF/0xSIZE
    symbol: KallsymsEntry  # the symbol printed (kallsyms entry)
    elf_name: str  # the ELF name it means
    link_address: int  # IP or return address
    lookup_address: int  # what the oracle is asked: the IP, or the call instruction
    call_site: int | None
    style: str = "exact"  # how the frame prints its name (STYLES)
    candidates: list[int] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)
    alone: list[int] = field(default_factory=list)
    line: int = 0
    chain: list[tuple[str | None, str | None, int]] = field(default_factory=list)


@dataclass
class Case:
    frames: list[SynthFrame]


class Synthesizer:
    def __init__(self, spec: KernelSpec, vmlinux: Path, seed: int = 61192) -> None:
        self.spec = spec
        self.vmlinux = vmlinux
        self.elf_symbols = read_elf_symbols(vmlinux)
        self.kallsyms = read_kallsyms(spec.kallsyms_list, vmlinux, self.elf_symbols)
        with vmlinux.open("rb") as file:
            machine = ELFFile(file)["e_machine"]
        self.arch = AARCH64 if machine == "EM_AARCH64" else X86_64
        self.code = Code(vmlinux, self.arch)
        self.random = random.Random(seed)
        self.elf_by_address: dict[int, list[ElfSymbol]] = {}
        for symbol in self.elf_symbols:
            self.elf_by_address.setdefault(symbol.link_address, []).append(symbol)
        # Every kallsyms symbol by each name an oops of some era prints for it: a decoder
        # must consider them all (a log may come from a backport, or carry no version).
        self.by_printed: dict[str, list[KallsymsEntry]] = {}
        # Other eras' names only for code: a function frame never means a data object.
        for entry in self.kallsyms.entries:
            self.by_printed.setdefault(entry.name, []).append(entry)
            if entry.letter not in "tTwW":
                continue
            for printed in {printed_as(entry.name, style) for style in STYLES} - {entry.name}:
                self.by_printed.setdefault(printed, []).append(entry)
        # What the kernel itself prints: the names its duplicate cases are printed with.
        self.by_own_name: dict[str, list[KallsymsEntry]] = {}
        for entry in self.kallsyms.entries:
            own = printed_as(entry.name, spec.own_style)
            self.by_own_name.setdefault(own, []).append(entry)
        self.text_letters = "tTwW"

    # -- helpers -------------------------------------------------------------------------------

    def function_extent(self, start: int) -> tuple[int, int]:
        """[start, end) of the code at ``start``: the ELF FUNC size when there is one, else
        the kallsyms extent."""
        sizes = [s.elf_size for s in self.elf_by_address.get(start, ()) if s.type == "FUNC"]
        ksize = self.kallsyms.size_at(start) or 0
        elf_size = max(sizes, default=0)
        return start, start + (min(elf_size, ksize) if elf_size else ksize)

    def printed_entry(self, start: int) -> KallsymsEntry | None:
        """The entry the kernel prints for code starting at ``start``: one without aliases
        (an alias set would make the printed name a matter of table order)."""
        entries = [e for e in self.kallsyms.at.get(start, ()) if e.letter in self.text_letters]
        names = {e.name for e in entries}
        if len(names) != 1:
            return None
        return entries[0]

    def frame_text(self, entry: KallsymsEntry, offset: int, style: str) -> str:
        size = self.kallsyms.size_at(entry.link_address)
        assert size is not None
        return f"{printed_as(entry.name, style)}+{offset:#x}/{size:#x}"

    def calls_in(self, start: int) -> list[RawInstruction]:
        """Call instructions of the function at ``start`` that a running kernel executes."""
        begin, end = self.function_extent(start)
        calls = []
        for instruction in self.code.sweep(begin, end):
            if instruction[0] >= end:
                break
            if not is_call(self.arch, instruction[2]):
                continue
            target = direct_target(self.arch, instruction[2], instruction[3])
            if target is not None and self.names_at(target) & set(NOT_REAL_CALL_TARGETS):
                continue
            calls.append(instruction)
        return calls

    def names_at(self, link_address: int) -> set[str]:
        return {s.name for s in self.elf_by_address.get(link_address, ())}

    def callee_of(self, call: RawInstruction) -> KallsymsEntry | None:
        """The printed symbol a direct call enters, None for indirect calls and thunks."""
        target = direct_target(self.arch, call[2], call[3])
        if target is None or self.call_targets(call) is None:
            return None
        return self.printed_entry(target)

    def return_frame(
        self, kind: str, entry: KallsymsEntry, call: RawInstruction, style: str
    ) -> SynthFrame | None:
        """The trace entry of the return address after ``call``, inside ``entry``."""
        return_address = call[0] + call[1]
        # x86 prints trace entries with %pB (name of address - 1), arm64 with %pS.
        probe = return_address - 1 if self.arch == X86_64 else return_address
        if self.kallsyms.containing(probe) != entry.link_address:
            return None  # printed as the next function (arm64 noreturn bl as the last word)
        offset = return_address - entry.link_address
        return SynthFrame(
            kind,
            "ret",
            self.frame_text(entry, offset, style),
            entry,
            entry.name,
            return_address,
            call[0],
            call[0],
            style,
        )

    def ip_frame(self, kind: str, entry: KallsymsEntry, style: str) -> SynthFrame | None:
        """A ``RIP:`` inside ``entry`` at a pseudo-random instruction boundary of its code."""
        begin, end = self.function_extent(entry.link_address)
        instructions = [i for i in self.code.sweep(begin, end) if i[0] < end]
        if not instructions:
            return None
        ip = self.random.choice(instructions)[0]
        return SynthFrame(
            kind,
            "ip",
            self.frame_text(entry, ip - begin, style),
            entry,
            entry.name,
            ip,
            ip,
            None,
            style,
        )

    # -- cases ---------------------------------------------------------------------------------

    def suffixed_cases(
        self, style: str, max_cases: int | None, every_call: bool = False
    ) -> list[Case]:
        """One case per function the style prints differently from its plain name (exact:
        every function with a suffix, printed in full): a return frame after a real call
        inside it, after its callee's RIP; ``every_call``: one case per real call inside it.
        ``max_cases`` keeps a deterministic sample of the functions."""
        starts = sorted(
            {
                s.link_address
                for s in self.elf_symbols
                if s.type == "FUNC" and "." in s.name and s.elf_size
            }
        )
        chosen = []
        for start in starts:
            entry = self.printed_entry(start)
            if entry is None or entry.letter not in self.text_letters or "." not in entry.name:
                continue
            if style != "exact" and printed_as(entry.name, style) == entry.name:
                continue
            chosen.append(entry)
        if max_cases is not None and len(chosen) > max_cases:
            sampler = random.Random(f"{self.spec.name}/{style}")
            chosen = sorted(sampler.sample(chosen, max_cases), key=lambda e: e.link_address)
        cases = []
        for entry in chosen:
            calls = self.calls_in(entry.link_address)
            self.random.shuffle(calls)
            for call in calls:
                frame = self.return_frame("suffixed", entry, call, style)
                if frame is None:
                    continue
                cases.append(Case(self.with_callee(call, frame, "callee", style)))
                if not every_call:
                    break
        return cases

    def with_callee(
        self, call: RawInstruction, frame: SynthFrame, kind: str, style: str
    ) -> list[SynthFrame]:
        callee = self.callee_of(call)
        ip = self.ip_frame(kind, callee, style) if callee is not None else None
        return [ip, frame] if ip is not None else [frame]

    def duplicate_groups(self) -> list[list[KallsymsEntry]]:
        """Text names printed for more than one piece of code (one entry per address)."""
        groups = []
        for _name, entries in sorted(self.by_own_name.items()):
            text = {
                e.link_address: e
                for e in entries
                if e.letter in self.text_letters and self.printed_entry(e.link_address) is e
            }
            if len(text) > 1:
                groups.append([text[a] for a in sorted(text)])
        return groups

    def duplicate_cases(self, max_cases: int | None) -> list[Case]:
        """Per copy, a callee case (RIP in the copy + a direct caller's return frame) and a
        caller case (the copy's return frame after the RIP of its callee); round-robin over
        the groups so that a bound keeps every group."""
        groups = self.duplicate_groups()
        copies = {e.link_address for g in groups for e in g}
        callers = self.code.direct_calls(copies)
        per_group: list[list[Case]] = []
        for number, group in enumerate(groups):
            # Start at another copy and another kind in each group, so that a bound keeps
            # callee and caller cases of many different copies.
            rotated = group[number % len(group) :] + group[: number % len(group)]
            callee_cases = [
                c
                for c in (self.callee_case(e, callers.get(e.link_address, [])) for e in rotated)
                if c is not None
            ]
            caller_cases = [c for c in (self.caller_case(e) for e in rotated) if c is not None]
            pairs = (
                [callee_cases, caller_cases] if number % 2 == 0 else [caller_cases, callee_cases]
            )
            cases: list[Case] = []
            for index in range(max(len(callee_cases), len(caller_cases))):
                cases += [kind[index] for kind in pairs if index < len(kind)]
            per_group.append(cases)
        chosen: list[Case] = []
        depth = 0
        while any(depth < len(cases) for cases in per_group):
            for cases in per_group:
                if depth < len(cases) and (max_cases is None or len(chosen) < max_cases):
                    chosen.append(cases[depth])
            depth += 1
        return chosen

    def callee_case(self, copy: KallsymsEntry, call_addresses: list[int]) -> Case | None:
        style = self.spec.own_style
        ip = self.ip_frame("dup-callee", copy, style)
        if ip is None:
            return None
        frames = [ip]
        for call_address in self.random.sample(call_addresses, len(call_addresses)):
            start = self.kallsyms.containing(call_address)
            caller = self.printed_entry(start) if start is not None else None
            if caller is None or caller.letter not in self.text_letters:
                continue
            begin, end = self.function_extent(start)  # type: ignore[arg-type]
            sweep = self.code.sweep(begin, max(end, call_address + 1))
            call = next((i for i in sweep if i[0] == call_address), None)
            if call is None or not is_call(self.arch, call[2]):
                continue  # the e8 byte is inside another instruction
            frame = self.return_frame("caller", caller, call, style)
            if frame is not None:
                frames.append(frame)
                break
        return Case(frames)

    def caller_case(self, copy: KallsymsEntry) -> Case | None:
        calls = self.calls_in(copy.link_address)
        # Prefer direct calls: they give the callee's RIP and the call-target evidence.
        direct = [c for c in calls if self.callee_of(c) is not None]
        for call in self.random.sample(direct, len(direct)) + calls:
            frame = self.return_frame("dup-caller", copy, call, self.spec.own_style)
            if frame is not None:
                return Case(self.with_callee(call, frame, "callee", self.spec.own_style))
        return None

    # -- evidence ------------------------------------------------------------------------------

    def resolve_evidence(self, frames: Sequence[SynthFrame]) -> None:
        """Fill ``candidates`` and ``survivors`` of each frame of one trace, in trace order.

        The evidence (docs/kernel-facts.md#printed-names, #return-addresses and #code-line),
        each test keeping what it cannot reject and rejecting nothing when it would reject
        every copy: the printed kallsyms size; for a return address, a call instruction ending
        at ``copy + offset``; for an exact IP, an instruction starting there; then across
        adjacent frames (callee first, caller next): when the callee is one copy, the caller
        copies whose call there enters it; when the caller is one copy, the callee copies its
        direct call enters. Indirect calls, retpoline thunks and static-call trampolines tell
        nothing about the callee."""
        callee: SynthFrame | None = None
        for frame in frames:
            name, rest = frame.printed.split("+", 1)
            offset_text, size_text = rest.split("/")
            offset, size = int(offset_text, 16), int(size_text, 16)
            frame.candidates = sorted({e.link_address for e in self.by_printed.get(name, [])})
            left = _keep(
                frame.candidates, [self.kallsyms.size_at(s) == size for s in frame.candidates]
            )
            if frame.role == "ret":
                sites = {start: self.call_ending_at(start, offset) for start in left}
                if len(left) > 1:
                    left = _keep(left, [sites[s] is not None for s in left])
            elif len(left) > 1:
                left = _keep(left, [self.instruction_starts_at(s, offset) for s in left])
            frame.alone = list(left)
            if frame.role == "ret":
                if len(left) > 1 and callee is not None and len(callee.survivors) == 1:
                    entered = callee.survivors[0]
                    verdicts: list[bool | None] = []
                    for start in left:
                        site = sites[start]
                        targets = None if site is None else self.call_targets(site)
                        verdicts.append(
                            False
                            if site is None
                            else None
                            if targets is None
                            else entered in targets
                        )
                    left = _keep(left, verdicts)
                if len(left) == 1 and callee is not None and len(callee.survivors) > 1:
                    site = sites[left[0]]
                    targets = None if site is None else self.call_targets(site)
                    if targets is not None:
                        callee.survivors = _keep(
                            callee.survivors, [s in targets for s in callee.survivors]
                        )
            frame.survivors = left
            callee = frame

    def instruction_starts_at(self, start: int, offset: int) -> bool | None:
        """Whether an instruction of the copy at ``start`` (swept from its start) begins at
        ``start + offset``: an exact IP is one (docs/kernel-facts.md#code-line); None when
        the sweep stops before it."""
        if self.arch == AARCH64:
            return offset % 4 == 0
        begin, end = self.function_extent(start)
        target = start + offset
        # Past the target by the longest instruction: the one covering it decodes whole.
        for instruction in self.code.sweep(begin, max(end, target + 16)):
            if instruction[0] == target:
                return True
            if instruction[0] < target < instruction[0] + instruction[1]:
                return False  # the instruction before steps over it
            if instruction[0] > target:
                return False
        return None

    def call_ending_at(self, start: int, offset: int) -> RawInstruction | None:
        """The call instruction ending at ``start + offset``, None when no call ends there."""
        begin, end = self.function_extent(start)
        site = self.code.instruction_ending_at(begin, max(end, start + offset), start + offset)
        return site if site is not None and is_call(self.arch, site[2]) else None

    def call_targets(self, call: RawInstruction) -> set[int] | None:
        """The function a direct call enters; None when the code does not say."""
        target = direct_target(self.arch, call[2], call[3])
        if target is None:
            return None
        names = self.names_at(target)
        if any(n.startswith((*THUNK_PREFIXES, STATIC_CALL_TRAMPOLINE_PREFIX)) for n in names):
            return None
        return {target}


def _keep(candidates: list[int], verdicts: Sequence[bool | None]) -> list[int]:
    kept = [c for c, v in zip(candidates, verdicts, strict=True) if v is not False]
    return kept or candidates


# -- oracle --------------------------------------------------------------------------------------


def relative_path(path: str) -> str:
    """``path`` in the source tree, ``..`` folded (zstd's ``decompress/../common/x.h``):
    llvm-symbolizer prints the DWARF path as it is, ltosyms and users the plain one."""
    path = posixpath.normpath(path)
    for prefix in BUILD_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def symbolize(
    vmlinux: Path, addresses: Iterable[int]
) -> dict[int, list[tuple[str | None, str | None, int]]]:
    """``llvm-symbolizer --inlining`` chains (function, relative file, line), innermost first."""
    unique = sorted(set(addresses))
    text = "".join(f"{a:#x}\n" for a in unique)
    output = subprocess.run(
        ["llvm-symbolizer", "--inlining", "--output-style=JSON", f"--obj={vmlinux}"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    chains = {}
    for line in output.splitlines():
        record = json.loads(line)
        address = int(record["Address"], 16)
        chain = []
        for entry in record["Symbol"]:
            function = entry["FunctionName"] or None
            file = entry["FileName"] or None
            chain.append(
                (
                    None if function == "??" else function,
                    None if file in (None, "??") else relative_path(file),
                    int(entry["Line"]),
                )
            )
        chains[address] = chain
    return chains


def tool_version(tool: str) -> str:
    output = subprocess.run([tool, "--version"], check=False, capture_output=True, text=True).stdout
    return next((line.strip() for line in output.splitlines() if "version" in line), "")


# -- the log -------------------------------------------------------------------------------------


def banner_release(vmlinux: Path, symbols: Sequence[ElfSymbol]) -> str:
    """The release in ``linux_banner`` ("Linux version 6.1.192 ..."), as ``CPU:`` lines
    print it (the decoder compares the two)."""
    address = next(s.link_address for s in symbols if s.name == "linux_banner")
    with vmlinux.open("rb") as file:
        for section in ELFFile(file).iter_sections():
            start = section["sh_addr"]
            if (
                section["sh_type"] == "SHT_PROGBITS"
                and start <= address < start + section["sh_size"]
            ):
                banner = section.data()[address - start : address - start + 256]
                return banner.split(b" ")[2].decode()
    raise SystemExit("linux_banner not found")


def report_frames(arch: str, cases: Sequence[Case]) -> list[SynthFrame]:
    """The frames of one report. x86 prints a ``RIP:`` line for every ``pt_regs`` block in a
    trace; arm64 prints one ``pc :`` per report (repeated as the first trace entry), so its
    other cases keep only their return-address frames."""
    if arch == X86_64:
        return [f for case in cases for f in case.frames]
    ordered = sorted(cases, key=lambda c: c.frames[0].role != "ip")
    frames = list(ordered[0].frames)
    for case in ordered[1:]:
        frames += [f for f in case.frames if f.role == "ret"]
    return frames


def write_log(
    arch: str,
    release: str,
    build_id: str | None,
    cases: Sequence[Case],
    reports_before: int = 0,
    lines_before: int = 0,
) -> tuple[list[str], list[list[SynthFrame]]]:
    """Reports of up to CASES_PER_REPORT cases each, numbered after ``reports_before``, their
    lines after ``lines_before``; sets every frame's ``line``."""
    lines: list[str] = []
    reports: list[list[SynthFrame]] = []
    first_number = reports_before + 1
    for number, first in enumerate(range(0, len(cases), CASES_PER_REPORT), start=first_number):
        frames = report_frames(arch, cases[first : first + CASES_PER_REPORT])
        reports.append(frames)
        cpu = f"CPU: 0 PID: 1 Comm: synth Not tainted {release} #{number}"
        if build_id:
            cpu += f"  {build_id}"  # CONFIG_STACKTRACE_BUILD_ID (lib/dump_stack.c)
        head = frames[0] if frames[0].role == "ip" else None
        if arch == X86_64:
            lines += [
                "BUG: kernel NULL pointer dereference, address: 0000000000000008",
                "#PF: supervisor read access in kernel mode",
                "#PF: error_code(0x0000) - not-present page",
                f"Oops: 0000 [#{number}] SMP",
                cpu,
            ]
            if head is not None:
                lines.append(f"RIP: 0010:{head.printed}")
                head.line = lines_before + len(lines)
                lines.append("RSP: 0018:ffffc90000013d98 EFLAGS: 00010246")
            lines += ["Call Trace:", " <TASK>"]
            for frame in frames:
                if frame is not head:
                    prefix = " RIP: 0010:" if frame.role == "ip" else " "
                    lines.append(prefix + frame.printed)
                    frame.line = lines_before + len(lines)
            lines.append(" </TASK>")
        else:
            lines += [
                "Unable to handle kernel NULL pointer dereference at virtual address "
                "0000000000000008",
                f"Internal error: Oops: 0000000096000005 [#{number}] SMP",
                "Modules linked in:",
                cpu,
                "Hardware name: linux,dummy-virt (DT)",
            ]
            if head is not None:
                lines.append(f"pc : {head.printed}")
                head.line = lines_before + len(lines)
            lines += ["sp : ffffffc00800bd60", "Call trace:"]
            for index, frame in enumerate(list(frames)):
                lines.append(" " + frame.printed)
                if frame is head:
                    # The first entry repeats pc: an exact IP too (arch/arm64/kernel/stacktrace.c).
                    repeated = dataclasses.replace(head, line=lines_before + len(lines))
                    frames.insert(index + 1, repeated)
                else:
                    frame.line = lines_before + len(lines)
        lines.append(f"---[ end trace {number:016x} ]---")
    return lines, reports


def build_suite(
    spec: KernelSpec, max_cases: int | None, every_call: bool = False
) -> dict[str, object]:
    vmlinux = vmlinux_path(spec)
    print(f"{spec.name}: {vmlinux}", file=sys.stderr)
    synth = Synthesizer(spec, vmlinux)
    # One report prints in one style: cases are written style by style.
    by_style: list[list[Case]] = [
        synth.suffixed_cases(style, max_cases, every_call) for style in spec.styles
    ]
    if spec.duplicate_cases:
        by_style.append(synth.duplicate_cases(spec.duplicate_bound))
    release = banner_release(vmlinux, synth.elf_symbols)
    stacktrace_build_id = synth.code.build_id if spec.prints_build_id else None
    lines, reports = [], []
    for cases in by_style:
        more_lines, more_reports = write_log(
            synth.arch, release, stacktrace_build_id, cases, len(reports), len(lines)
        )
        lines += more_lines
        reports += more_reports
    for frames in reports:
        synth.resolve_evidence(frames)
    frames = [f for report in reports for f in report]
    chains = symbolize(vmlinux, (f.lookup_address for f in frames))
    base = min(s.link_address for s in synth.elf_symbols if s.name in ("_text", "_stext"))

    def hexoffset(link_address: int) -> str:
        return f"{link_address - base:x}"

    files: list[str] = []
    file_index: dict[str | None, int | None] = {None: None}
    rows = []
    for frame in frames:
        chain = []
        for function, file, line in chains[frame.lookup_address]:
            if file not in file_index:
                file_index[file] = len(files)
                files.append(file)  # type: ignore[arg-type]
            chain.append([function, file_index[file], line])
        rows.append(
            [
                frame.line,
                frame.kind,
                frame.style,
                frame.elf_name,
                hexoffset(frame.symbol.link_address),
                None if frame.call_site is None else hexoffset(frame.call_site),
                [hexoffset(a) for a in frame.candidates] if len(frame.candidates) > 1 else [],
                [frame.candidates.index(a) for a in frame.survivors]
                if len(frame.candidates) > 1
                else [],
                [frame.candidates.index(a) for a in frame.alone]
                if len(frame.candidates) > 1
                else [],
                chain,
            ]
        )
    counts: dict[str, object] = {
        "frames": len(rows),
        "duplicate_groups": len(synth.duplicate_groups()) if spec.duplicate_cases else 0,
        "dup-callee": sum(1 for f in frames if f.kind == "dup-callee"),
        "dup-caller": sum(1 for f in frames if f.kind == "dup-caller"),
        "multi_candidate_frames": sum(1 for f in frames if len(f.candidates) > 1),
        "separable_frames": sum(
            1 for f in frames if len(f.candidates) > 1 and len(f.survivors) == 1
        ),
    }
    for style in spec.styles:
        counts[f"suffixed {style}"] = sum(
            1 for f in frames if f.kind == "suffixed" and f.style == style
        )
    return {
        "schema": SCHEMA,
        "kernel": spec.name,
        "arch": synth.arch,
        "vmlinux_build_id": synth.code.build_id,
        "address_base": f"{base:#x}",
        "release": release,
        "generator": f"python tools/synth_traces.py {spec.generator_arguments}"
        + (f" --max-cases {max_cases}" if max_cases is not None else " --max-cases 0")
        + (" --every-call" if every_call else ""),
        "oracle": tool_version("llvm-symbolizer"),
        "counts": counts,
        "frame_fields": list(FRAME_FIELDS),
        "files": files,
        "log": lines,
        "frames": rows,
    }


def dump(suite: dict[str, object]) -> str:
    """Compact JSON, one log line and one frame per line (reviewable as a diff)."""
    parts = []
    for key, value in suite.items():
        if key in ("log", "frames", "files"):
            items = ",\n  ".join(json.dumps(v, separators=(",", ":")) for v in value)  # type: ignore[attr-defined]
            parts.append(f'"{key}": [\n  {items}\n ]')
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value, separators=(',', ':'))}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kernels", nargs="*", default=[])
    parser.add_argument("--out", type=Path, default=PROJECT / "tests" / "data" / "synth")
    parser.add_argument(
        "--max-cases",
        type=int,
        default=200,
        help="cases per style (and Debian duplicate cases) kept, a deterministic sample; 0: all",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus")),
    )
    parser.add_argument(
        "--every-call",
        action="store_true",
        help="a suffixed case for every real call inside each function, not one",
    )
    given = parser.add_argument_group(
        "a kernel given by its files instead of a corpus name (KERNEL ... is then empty)"
    )
    given.add_argument("--vmlinux", type=Path, help="its vmlinux")
    given.add_argument("--system-map", type=Path, help="its System.map (default: nm -n)")
    given.add_argument("--name", help="the suite's kernel name (default: the vmlinux file name)")
    given.add_argument(
        "--own-style",
        choices=STYLES,
        default="exact",
        help="how the kernel prints names itself: its duplicate cases (default: exact)",
    )
    given.add_argument(
        "--styles",
        default="exact,llvm-cut,first-dot",
        help="comma-separated styles its suffixed functions are printed in "
        "(default: exact,llvm-cut,first-dot)",
    )
    args = parser.parse_args(argv)
    specs = kernel_specs(args.corpus)
    names = args.kernels or list(specs)
    if args.vmlinux is not None:
        if args.kernels:
            parser.error("give either KERNEL names or --vmlinux")
        styles = tuple(args.styles.split(","))
        if unknown := sorted(set(styles) - set(STYLES)):
            parser.error(f"unknown style(s) {', '.join(unknown)} (known: {', '.join(STYLES)})")
        name = args.name or args.vmlinux.name
        specs = {name: kernel_by_path(name, args.vmlinux, args.system_map, args.own_style, styles)}
        names = [name]
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name not in specs:
            raise SystemExit(f"unknown kernel {name!r} (one of {', '.join(specs)})")
        suite = build_suite(specs[name], args.max_cases or None, args.every_call)
        path = args.out / f"{name}.json"
        path.write_text(dump(suite))
        print(f"{path}: {json.dumps(suite['counts'])}", file=sys.stderr)


if __name__ == "__main__":
    main()
