#!/usr/bin/env python3
"""Describe the sample images in MANIFEST.json, from the binaries themselves.

Everything recorded here is read back from the built files with binutils
``nm``/``readelf``/``objdump`` and ``llvm-dwarfdump`` (run as subprocesses,
standard library only), so the manifest states what each compiler really
produced, not what the sources hoped for.  ``--check`` compares those facts
with the EXPECTED table below and fails when a rebuilt image lost a property
it is kept for.

Usage (build.sh runs it)::

    python3 manifest.py --check --output MANIFEST.json [--build-info FILE]

Without ``--build-info`` the compile/link flags are carried over from the
existing manifest.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FORMAT_VERSION = 1

IMAGES = {
    # file: (compiler family, LTO flavour or None)
    "vmlinux-gcc": ("gcc", None),
    "vmlinux-gcc-lto": ("gcc", "gcc-lto"),
    "vmlinux-clang": ("clang", None),
    "vmlinux-clang-thinlto": ("clang", "thin"),
    "vmlinux-clang-lto": ("clang", "full"),
}
MODULES = {
    "sample_mod-gcc.ko": "gcc",
    "sample_mod-clang.ko": "clang",
}

# The names the sources were written to produce (see src/).
DUPLICATE_STATIC = "name_show"  # static in drv_alpha.c, drv_beta.c, drv_gamma.c
# Global in lib.c, static in drv_alpha.c, drv_beta.c, drv_gamma.c: full LTO keeps the global's
# name and renames the statics name.N.
GLOBAL_AND_STATICS = "stats_show"
DUPLICATE_DATA = ("dev_attr_name", "debug_level")
LOCAL_STATIC_DATA = ("count", "pokes")  # function-local statics
INLINED_EVERYWHERE = (
    "widget_get_id",  # lib.c, global, called from three other files
    "account_syscall",  # main.c, global, called only from main.c
)
REMOVED = "widget_debug_dump"  # lib.c, global, called from nowhere
NORETURN_LAST_CALL = ("widget_fatal", "panic_sample")
INLINE_CHAIN = ("widget_process", ("chain_outer", "chain_middle", "chain_inner"), "widget_hw_read")
BANNER = "linux_banner"
TEXT_MARKERS = ("_stext", "_etext", "_sinittext", "_einittext")

# Suffix kinds of the symbol-name grammar (DOMAIN.md section 1).
NAMED_SUFFIXES = {
    "constprop": "constprop",
    "isra": "isra",
    "part": "part",
    "cold": "cold",
    "lto_priv": "lto_priv",
    "llvm": "llvm",
    "localalias": "localalias",
    "specialized": "specialized",
    "argelim": "argelim",
    "__uniq": "uniq",
}
CLONE_KINDS = ("constprop", "isra", "part", "cold", "specialized", "argelim")
PROMOTION_KINDS = ("lto_priv", "llvm", "numeric")

NA_CLANG_CLONES = "clang makes no gcc IPA clones (.constprop/.isra/.part) and no .cold splits"
NA_NO_LTO = "no LTO: statics keep their names"
NA_GCC_LLVM = "only clang ThinLTO promotes with .llvm.<hash>"
NA_FULL_LTO = "clang full LTO links one module: nothing is promoted, clashing statics get .N"
NA_CLANG_LTO_PRIV = "only gcc LTO uses .lto_priv.N"
NA_NUMERIC = "only clang full LTO renames clashing statics to name.N"


def per_image(gcc: Any, gcc_lto: Any, clang: Any, thin: Any, full: Any) -> dict[str, Any]:
    """One expectation per image, in IMAGES order."""
    return dict(zip(IMAGES, (gcc, gcc_lto, clang, thin, full), strict=True))


# Expected outcome per property and image; ("n/a", reason) marks what that
# compiler cannot produce.  inlined_everywhere states: out_of_line (a symbol,
# no inlined instance), inlined_only (no symbol, DW_TAG_inlined_subroutine
# instances), out_of_line_and_inlined (both: ThinLTO imports widget_get_id
# into the callers' modules and keeps the original).
CLANG_NA = ("n/a", NA_CLANG_CLONES)
GCC_CLONE = per_image("present", "present", CLANG_NA, CLANG_NA, CLANG_NA)
ALL = per_image(*["present"] * 5)
EXPECTED: dict[str, dict[str, Any]] = {
    "duplicate_statics": ALL,
    "clone.constprop": GCC_CLONE,
    "clone.isra": GCC_CLONE,
    "clone.part": GCC_CLONE,
    "clone.cold": GCC_CLONE,
    "promotion.lto_priv": per_image(
        ("n/a", NA_NO_LTO),
        "present",
        ("n/a", NA_CLANG_LTO_PRIV),
        ("n/a", NA_CLANG_LTO_PRIV),
        ("n/a", NA_CLANG_LTO_PRIV),
    ),
    "promotion.llvm": per_image(
        ("n/a", NA_GCC_LLVM),
        ("n/a", NA_GCC_LLVM),
        ("n/a", NA_NO_LTO),
        "present",
        ("n/a", NA_FULL_LTO),
    ),
    "promotion.numeric": per_image(
        ("n/a", NA_NUMERIC),
        ("n/a", NA_NUMERIC),
        ("n/a", NA_NUMERIC),
        ("n/a", NA_NUMERIC),
        "present",
    ),
    "renamed_beside_global": per_image(
        ("n/a", NA_NUMERIC),
        ("n/a", NA_NUMERIC),
        ("n/a", NA_NUMERIC),
        ("n/a", NA_NUMERIC),
        "present",
    ),
    "inlined_everywhere.widget_get_id": per_image(
        "out_of_line", "inlined_only", "out_of_line", "out_of_line_and_inlined", "inlined_only"
    ),
    "inlined_everywhere.account_syscall": per_image(
        "out_of_line_and_inlined",
        "inlined_only",
        "out_of_line_and_inlined",
        "inlined_only",
        "inlined_only",
    ),
    "removed": per_image("kept", "removed", "kept", "removed", "removed"),
    "noreturn_last_call": ALL,
    "inline_chain": ALL,
    "linux_banner": ALL,
    "build_id": ALL,
    "text_ranges": ALL,
    "duplicate_static_data": ALL,
}


def run(*argv: str) -> str:
    """Run a tool and return its stdout (fails loudly)."""
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def hexa(value: int | None) -> str | None:
    return None if value is None else f"0x{value:x}"


# --------------------------------------------------------------------------
# Symbol names
# --------------------------------------------------------------------------


def split_name(name: str) -> tuple[str, list[list[Any]]]:
    """Split ``foo.part.0.lto_priv.0`` into ``foo`` and [[part, 0], [lto_priv, 0]].

    Digits alone are kind ``numeric`` (``name_show.31``, ``count.0``); other
    dotted words are kept as kind ``other`` (clang's ``func.count``).
    """
    tokens = name.split(".")
    if name.startswith("."):  # .str.5.llvm.N
        base, rest = "." + tokens[1], tokens[2:]
    else:
        base, rest = tokens[0], tokens[1:]
    parts: list[list[Any]] = []
    i = 0
    while i < len(rest):
        tok = rest[i]
        kind = NAMED_SUFFIXES.get(tok)
        if kind is not None:
            num = None
            if i + 1 < len(rest) and rest[i + 1].isdigit():
                num = int(rest[i + 1])
                i += 1
            parts.append([kind, num])
        elif tok.isdigit():
            parts.append(["numeric", int(tok)])
        else:
            parts.append(["other", tok])
        i += 1
    return base, parts


# --------------------------------------------------------------------------
# ELF facts via readelf / nm
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: str
    address: int
    offset: int
    size: int
    flags: str
    align: int


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    elf_size: int
    type: str  # FUNC, OBJECT, NOTYPE, ...
    bind: str
    ndx: str  # section index or UND/ABS
    letter: str  # nm type letter (what kallsyms prints)


_SECTION_RE = re.compile(
    r"^\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)"
    r"\s+[0-9a-f]+\s+([A-Za-z]*)\s+\d+\s+\d+\s+(\d+)\s*$"
)
_SYMBOL_RE = re.compile(
    r"^\s*\d+:\s+([0-9a-f]+)\s+(\S+)\s+(\w+)\s+(\w+)\s+\w+\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)"
)


def read_sections(path: Path) -> list[Section]:
    sections = []
    for line in run("readelf", "-SW", str(path)).splitlines():
        m = _SECTION_RE.match(line)
        if m and int(m.group(1)) != 0:
            sections.append(
                Section(
                    index=int(m.group(1)),
                    name=m.group(2),
                    type=m.group(3),
                    address=int(m.group(4), 16),
                    offset=int(m.group(5), 16),
                    size=int(m.group(6), 16),
                    flags=m.group(7),
                    align=int(m.group(8)),
                )
            )
    return sections


def read_symbols(path: Path) -> list[Symbol]:
    letters: dict[tuple[str, int], str] = {}
    for line in run("nm", str(path)).splitlines():
        parts = line.split()
        if len(parts) == 3:
            letters[(parts[2], int(parts[0], 16))] = parts[1]
    symbols = []
    for line in run("readelf", "-sW", str(path)).splitlines():
        m = _SYMBOL_RE.match(line)
        if not m or m.group(3) in ("FILE", "SECTION") or m.group(6) == "":
            continue
        value = int(m.group(1), 16)
        name = m.group(6)
        symbols.append(
            Symbol(
                name=name,
                value=value,
                elf_size=int(m.group(2), 0),
                type=m.group(3),
                bind=m.group(4),
                ndx=m.group(5),
                letter=letters.get((name, value), "?"),
            )
        )
    return symbols


def read_build_id(path: Path) -> str | None:
    m = re.search(r"Build ID:\s*([0-9a-f]+)", run("readelf", "-n", str(path)))
    return m.group(1) if m else None


def read_comment(path: Path) -> list[str]:
    out = run("readelf", "-p", ".comment", str(path))
    return sorted(
        {m.group(1).strip() for m in re.finditer(r"^\s*\[\s*[0-9a-f]+\]\s+(.*)$", out, re.M)}
    )


def read_bytes(path: Path, sections: list[Section], address: int, length: int) -> bytes:
    for sec in sections:
        if sec.type != "NOBITS" and sec.address <= address < sec.address + sec.size:
            with path.open("rb") as f:
                f.seek(sec.offset + address - sec.address)
                return f.read(length)
    raise ValueError(f"{path.name}: 0x{address:x} is in no file-backed section")


def elf_header(path: Path) -> dict[str, str]:
    out = run("readelf", "-hW", str(path))
    fields = {}
    for key in ("Type", "Machine", "Entry point address"):
        m = re.search(rf"^\s*{key}:\s+(.*)$", out, re.M)
        fields[key] = m.group(1).strip() if m else ""
    return fields


# --------------------------------------------------------------------------
# Disassembly via objdump
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Insn:
    address: int
    length: int
    mnemonic: str
    operands: str

    @property
    def end(self) -> int:
        return self.address + self.length

    @property
    def target(self) -> str | None:
        m = re.search(r"<([^>+]+)(?:\+0x[0-9a-f]+)?>", self.operands)
        return m.group(1) if m else None


_INSN_RE = re.compile(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t(\S+)\s*(.*)$")


def disassemble(path: Path, section: str) -> list[Insn]:
    insns = []
    for line in run("objdump", "-d", "-w", "-j", section, str(path)).splitlines():
        m = _INSN_RE.match(line)
        if m:
            insns.append(
                Insn(int(m.group(1), 16), len(m.group(2).split()), m.group(3), m.group(4).strip())
            )
    return insns


# --------------------------------------------------------------------------
# DWARF via llvm-dwarfdump --debug-info
# --------------------------------------------------------------------------


@dataclass
class Die:
    offset: int
    tag: str
    depth: int
    attrs: dict[str, str] = field(default_factory=dict)
    parent: Die | None = None
    children: list[Die] = field(default_factory=list)
    origin: Die | None = None  # DW_AT_abstract_origin / DW_AT_specification target

    @property
    def name(self) -> str | None:
        for key in ("DW_AT_name", "DW_AT_abstract_origin", "DW_AT_specification"):
            if key in self.attrs:
                m = re.search(r'"(.*)"', self.attrs[key])
                if m:
                    return m.group(1)
        return None

    def _addr(self, key: str) -> int | None:
        m = re.match(r"\((0x[0-9a-f]+)", self.attrs.get(key, ""))
        return int(m.group(1), 16) if m else None

    @property
    def ranges(self) -> list[tuple[int, int]]:
        low, high = self._addr("DW_AT_low_pc"), self._addr("DW_AT_high_pc")
        if low is not None and high is not None:
            return [(low, high)]
        text = self.attrs.get("DW_AT_ranges", "")
        return [
            (int(a, 16), int(b, 16))
            for a, b in re.findall(r"\[(0x[0-9a-f]+), (0x[0-9a-f]+)\)", text)
        ]

    @property
    def entry(self) -> int | None:
        entry = self._addr("DW_AT_entry_pc")
        if entry is None:
            entry = self._addr("DW_AT_low_pc")
        if entry is None and self.ranges:
            entry = self.ranges[0][0]
        return entry

    def attr_text(self, key: str) -> str | None:
        """An attribute's text, looked up through abstract origins (gcc LTO
        keeps decl_file/decl_line only in the early-debug DIE)."""
        die: Die | None = self
        while die is not None:
            if key in die.attrs:
                m = re.match(r'\("?(.*?)"?\)$', die.attrs[key], re.S)
                return m.group(1) if m else None
            die = die.origin
        return None

    def walk(self) -> list[Die]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


_DIE_RE = re.compile(r"^0x([0-9a-f]+):( +)(DW_TAG_\w+|NULL)")
_ATTR_RE = re.compile(r"^\s+(DW_AT_\w+)\t(.*)$")


def read_dwarf(path: Path) -> list[Die]:
    """Parse ``llvm-dwarfdump --debug-info`` into DIE trees, one per CU."""
    roots: list[Die] = []
    stack: list[Die] = []
    current: Die | None = None
    attr: str | None = None
    for line in run("llvm-dwarfdump", "--debug-info", str(path)).splitlines():
        m = _DIE_RE.match(line)
        if m:
            attr = None
            depth = (len(m.group(2)) - 1) // 2
            if m.group(3) == "NULL":
                current = None
                continue
            die = Die(int(m.group(1), 16), m.group(3), depth)
            while stack and stack[-1].depth >= depth:
                stack.pop()
            if stack:
                die.parent = stack[-1]
                stack[-1].children.append(die)
            else:
                roots.append(die)
            stack.append(die)
            current = die
            continue
        if current is None:
            continue
        m = _ATTR_RE.match(line)
        if m:
            attr = m.group(1)
            current.attrs[attr] = m.group(2)
        elif line.strip() and attr is not None:
            current.attrs[attr] += " " + line.strip()
        else:
            attr = None
    by_offset = {d.offset: d for root in roots for d in root.walk()}
    for die in by_offset.values():
        for key in ("DW_AT_abstract_origin", "DW_AT_specification"):
            m = re.match(r"\((0x[0-9a-f]+)", die.attrs.get(key, ""))
            if m:
                die.origin = by_offset.get(int(m.group(1), 16))
                break
    return roots


def concrete_function(die: Die) -> Die | None:
    """The out-of-line DW_TAG_subprogram (with code) that contains ``die``."""
    node = die.parent
    while node is not None:
        if node.tag == "DW_TAG_subprogram" and node.ranges:
            return node
        node = node.parent
    return None


# --------------------------------------------------------------------------
# Image analysis
# --------------------------------------------------------------------------


class Image:
    """One ELF file and the facts the manifest needs from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sections = read_sections(path)
        self.symbols = read_symbols(path)
        self._dwarf: list[Die] | None = None
        self._insns: dict[str, list[Insn]] = {}

    @property
    def dwarf(self) -> list[Die]:
        if self._dwarf is None:
            self._dwarf = read_dwarf(self.path)
        return self._dwarf

    def insns(self, section: str) -> list[Insn]:
        if section not in self._insns:
            self._insns[section] = disassemble(self.path, section)
        return self._insns[section]

    def symbol(self, name: str) -> Symbol | None:
        for sym in self.symbols:
            if sym.name == name:
                return sym
        return None

    def section_at(self, address: int) -> Section | None:
        for sec in self.sections:
            if "A" in sec.flags and sec.address <= address < sec.address + sec.size:
                return sec
        return None


class Vmlinux(Image):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        marks = {name: self.symbol(name) for name in TEXT_MARKERS}
        self.text_ranges = []
        for start, end in (("_stext", "_etext"), ("_sinittext", "_einittext")):
            s, e = marks[start], marks[end]
            if s is not None and e is not None:
                self.text_ranges.append((s.value, e.value))
        # kallsyms keeps text symbols inside the text ranges (scripts/kallsyms.c
        # symbol_valid() with CONFIG_KALLSYMS_ALL=n); sizes are gaps to the next
        # higher address among them (kernel/kallsyms.c get_symbol_pos()).
        self.kallsyms = sorted(
            (
                s
                for s in self.symbols
                if s.letter in "TtWw" and s.ndx != "ABS" and self.in_text(s.value)
            ),
            key=lambda s: s.value,
        )
        self._addresses = sorted({s.value for s in self.kallsyms})

    def in_text(self, address: int) -> bool:
        return any(lo <= address <= hi for lo, hi in self.text_ranges)

    def kallsyms_size(self, sym: Symbol) -> int | None:
        for address in self._addresses:
            if address > sym.value:
                return address - sym.value
        return None

    def functions(self) -> list[Symbol]:
        return [s for s in self.kallsyms if s.type == "FUNC"]

    def symbols_at(self, address: int) -> list[str]:
        return [s.name for s in self.kallsyms if s.value == address]

    def containing(self, address: int) -> Symbol | None:
        best = None
        for sym in self.functions():
            if sym.value <= address < sym.value + max(sym.elf_size, 1):
                best = sym
        return best

    def describe(self, sym: Symbol) -> dict[str, Any]:
        base, parts = split_name(sym.name)
        return {
            "name": sym.name,
            "base": base,
            "suffixes": parts,
            "address": hexa(sym.value),
            "nm_type": sym.letter,
            "elf_size": sym.elf_size,
            "kallsyms_size": self.kallsyms_size(sym),
        }


def status(present: bool) -> str:
    return "present" if present else "absent"


def analyse_duplicates(img: Vmlinux) -> tuple[dict[str, Any], str]:
    members = [s for s in img.functions() if split_name(s.name)[0] == DUPLICATE_STATIC]
    entries = []
    for sym in members:
        entry = img.describe(sym)
        dies = [
            d
            for cu in img.dwarf
            for d in cu.walk()
            if d.tag == "DW_TAG_subprogram" and d.ranges and d.ranges[0][0] == sym.value
        ]
        if dies:
            entry["decl_file"] = dies[0].attr_text("DW_AT_decl_file")
            entry["decl_line"] = int(dies[0].attr_text("DW_AT_decl_line") or 0) or None
        entries.append(entry)
    pairs: dict[tuple[int, int | None], list[str]] = {}
    for e in entries:
        pairs.setdefault((e["elf_size"], e["kallsyms_size"]), []).append(e["name"])
    same = [names for names in pairs.values() if len(names) >= 2]
    ok = len(members) >= 3 and bool(same) and len(pairs) >= 2
    # Every other text base name that occurs more than once, for reference.
    by_base: dict[str, list[str]] = {}
    for sym in img.functions():
        by_base.setdefault(split_name(sym.name)[0], []).append(sym.name)
    return (
        {
            "name": DUPLICATE_STATIC,
            "members": entries,
            "same_elf_and_kallsyms_size": same,
            "other_text_duplicates": {
                k: v for k, v in by_base.items() if len(v) > 1 and k != DUPLICATE_STATIC
            },
        },
        status(ok),
    )


def return_offsets(img: Vmlinux, sym: Symbol) -> list[int]:
    """Offsets of the return addresses after the calls inside ``sym``."""
    sec = img.section_at(sym.value)
    end = sym.value + sym.elf_size
    return [
        i.end - sym.value
        for i in img.insns(sec.name if sec else ".text")
        if sym.value <= i.address < end and i.mnemonic.startswith("call")
    ]


def analyse_global_and_statics(img: Vmlinux) -> tuple[dict[str, Any], str]:
    """The global stats_show() and the three statics of that name.

    Present when the global (DW_AT_external) keeps the plain name and, among the
    statics renamed name.N, one has the global's kallsyms size and return offsets
    (neither the printed size nor a call at the return address tells them apart
    once a 5.16 - 6.1.41 oops prints both as stats_show), one has its size but its
    calls elsewhere (the call tells), and one has another size (the size tells).
    """
    members = []
    for sym in img.functions():
        if split_name(sym.name)[0] != GLOBAL_AND_STATICS:
            continue
        entry = img.describe(sym)
        dies = [
            d
            for cu in img.dwarf
            for d in cu.walk()
            if d.tag == "DW_TAG_subprogram" and d.ranges and d.ranges[0][0] == sym.value
        ]
        entry["external"] = bool(dies) and dies[0].attr_text("DW_AT_external") == "true"
        entry["decl_file"] = dies[0].attr_text("DW_AT_decl_file") if dies else None
        entry["return_offsets"] = return_offsets(img, sym)
        members.append(entry)
    plain = [m for m in members if m["name"] == GLOBAL_AND_STATICS and m["external"]]
    renamed = [m for m in members if [p[0] for p in m["suffixes"]] == ["numeric"]]
    ok = False
    if len(plain) == 1 and len(renamed) >= 2:
        size, offsets = plain[0]["kallsyms_size"], plain[0]["return_offsets"]
        same = [m for m in renamed if m["kallsyms_size"] == size]
        ok = (
            any(m["return_offsets"] == offsets for m in same)
            and any(m["return_offsets"] != offsets for m in same)
            and any(m["kallsyms_size"] != size for m in renamed)
        )
    return {"name": GLOBAL_AND_STATICS, "members": members}, status(ok)


def analyse_data(img: Vmlinux) -> tuple[dict[str, Any], str]:
    objects = [
        s
        for s in img.symbols
        if s.type == "OBJECT"
        or (s.type == "NOTYPE" and s.letter in "dDbBrR" and not s.name.startswith("_"))
    ]
    listed: list[dict[str, Any]] = []
    for s in sorted(objects, key=lambda s: s.value):
        sec = img.section_at(s.value)
        base, parts = split_name(s.name)
        listed.append(
            {
                "name": s.name,
                "base": base,
                "suffixes": parts,
                "address": hexa(s.value),
                "nm_type": s.letter,
                "elf_size": s.elf_size,
                "section": sec.name if sec else None,
            }
        )
    groups: dict[str, list[str]] = {}
    for base in DUPLICATE_DATA:
        groups[base] = [e["name"] for e in listed if e["base"] == base]
    local_statics = [
        e["name"]
        for e in listed
        if any(e["base"] == n or ["other", n] in e["suffixes"] for n in LOCAL_STATIC_DATA)
    ]
    func_names = [e["name"] for e in listed if e["base"] == "__func__"]
    ok = all(len(v) >= 2 for v in groups.values())
    return (
        {
            "objects": listed,
            "same_name_statics": groups,
            "function_local_statics": local_statics,
            "func_name_objects": func_names,
        },
        status(ok),
    )


def analyse_suffixes(img: Vmlinux) -> dict[str, list[dict[str, Any]]]:
    clones: dict[str, list[dict[str, Any]]] = {k: [] for k in CLONE_KINDS}
    for sym in img.functions():
        kinds = {p[0] for p in split_name(sym.name)[1]}
        for kind in CLONE_KINDS:
            if kind in kinds:
                clones[kind].append(img.describe(sym))
    return clones


def analyse_promotions(img: Vmlinux) -> dict[str, list[dict[str, Any]]]:
    """Statics renamed by LTO: .lto_priv.N, .llvm.<hash>, and a bare .N.

    A bare numeric suffix counts only when the same symbol kind also exists
    under the plain base name (LLVM full LTO's name_show / name_show.31);
    gcc's function-local count.0 / __func__.0 have no plain twin.
    """
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in PROMOTION_KINDS}
    plain = {(s.name, s.type) for s in img.symbols}
    for sym in sorted(img.symbols, key=lambda s: s.value):
        if sym.type not in ("FUNC", "OBJECT"):
            continue
        base, parts = split_name(sym.name)
        kinds = [p[0] for p in parts]
        for kind in PROMOTION_KINDS:
            if kind not in kinds:
                continue
            if kind == "numeric" and (kinds != ["numeric"] or (base, sym.type) not in plain):
                continue
            entry = {
                "name": sym.name,
                "base": base,
                "suffixes": parts,
                "kind": sym.type,
                "address": hexa(sym.value),
                "nm_type": sym.letter,
                "bind": sym.bind,
            }
            out[kind].append(entry)
    return out


def inlined_instances(img: Vmlinux, name: str) -> list[Die]:
    return [
        d
        for cu in img.dwarf
        for d in cu.walk()
        if d.tag == "DW_TAG_inlined_subroutine" and d.name == name
    ]


def analyse_inlined(img: Vmlinux, name: str) -> tuple[dict[str, Any], str]:
    sym = img.symbol(name)
    instances = []
    for die in inlined_instances(img, name):
        entry = die.entry
        caller = img.containing(entry) if entry is not None else None
        outer = concrete_function(die)
        instances.append(
            {
                "entry_pc": hexa(entry),
                "caller_symbol": caller.name if caller else None,
                "caller_dwarf": outer.name if outer else None,
                "call_file": die.attr_text("DW_AT_call_file"),
                "call_line": int(die.attr_text("DW_AT_call_line") or 0) or None,
            }
        )
    instances.sort(key=lambda e: e["entry_pc"] or "")
    if sym is not None and instances:
        state = "out_of_line_and_inlined"
    elif sym is not None:
        state = "out_of_line"
    elif instances:
        state = "inlined_only"
    else:
        state = "absent"
    return (
        {
            "name": name,
            "out_of_line": img.describe(sym) if sym else None,
            "inlined_instance_count": len(instances),
            "inlined_instances": instances,
            "callers": sorted({i["caller_symbol"] for i in instances if i["caller_symbol"]}),
        },
        state,
    )


def analyse_removed(img: Vmlinux) -> tuple[dict[str, Any], str]:
    sym = img.symbol(REMOVED)
    with_code = [
        d
        for cu in img.dwarf
        for d in cu.walk()
        if d.tag == "DW_TAG_subprogram" and d.name == REMOVED and d.ranges
    ]
    inlined = inlined_instances(img, REMOVED)
    gone = sym is None and not with_code and not inlined
    return (
        {
            "name": REMOVED,
            "symbol": img.describe(sym) if sym else None,
            "dwarf_subprograms_with_code": len(with_code),
            "inlined_instance_count": len(inlined),
        },
        "removed" if gone else "kept",
    )


def analyse_noreturn(img: Vmlinux) -> tuple[dict[str, Any], str]:
    name, callee = NORETURN_LAST_CALL
    sym = img.symbol(name)
    if sym is None:
        return {"name": name}, "absent"
    sec = img.section_at(sym.value)
    end = sym.value + sym.elf_size
    body = [i for i in img.insns(sec.name if sec else ".text") if sym.value <= i.address < end]
    last = body[-1] if body else None
    next_syms = img.symbols_at(end)
    ok = (
        last is not None
        and last.mnemonic.startswith("call")
        and last.end == end
        and last.target == callee
        and bool(next_syms)
        and img.kallsyms_size(sym) == sym.elf_size
    )
    return (
        {
            "name": name,
            "address": hexa(sym.value),
            "elf_size": sym.elf_size,
            "kallsyms_size": img.kallsyms_size(sym),
            "call_address": hexa(last.address) if last else None,
            "call_target": last.target if last else None,
            "return_address": hexa(last.end) if last else None,
            "return_offset": (last.end - sym.value) if last else None,
            "symbols_at_return_address": next_syms,
            "note": "the return address is the first byte of the next symbol: an x86 oops "
            "prints it as name+0xSIZE/0xSIZE, and a plain lookup of the address names "
            "the next function",
        },
        status(ok),
    )


def analyse_last_calls(img: Vmlinux) -> list[dict[str, Any]]:
    """Every text function whose last instruction is a call (noreturn callee)."""
    out = []
    for sym in img.functions():
        sec = img.section_at(sym.value)
        if sec is None or sym.elf_size == 0:
            continue
        end = sym.value + sym.elf_size
        last = [i for i in img.insns(sec.name) if sym.value <= i.address < end]
        if not last or not last[-1].mnemonic.startswith("call") or last[-1].end != end:
            continue
        out.append(
            {
                "name": sym.name,
                "call_address": hexa(last[-1].address),
                "call_target": last[-1].target,
                "return_address": hexa(end),
                "elf_size": sym.elf_size,
                "kallsyms_size": img.kallsyms_size(sym),
                "symbols_at_return_address": img.symbols_at(end),
            }
        )
    return out


def find_chain(function: Die) -> list[Die] | None:
    """The outer -> middle -> inner inlined DIEs below ``function``, if any."""
    _, chain, _ = INLINE_CHAIN
    for die in function.walk():
        if die.tag != "DW_TAG_inlined_subroutine" or die.name != chain[0]:
            continue
        levels = [die]
        for link in chain[1:]:
            found = [
                d
                for d in levels[-1].walk()
                if d.tag == "DW_TAG_inlined_subroutine" and d.name == link
            ]
            if not found:
                break
            levels.append(found[0])
        if len(levels) == len(chain):
            return levels
    return None


def chain_levels(levels: list[Die]) -> list[dict[str, Any]]:
    return [
        {
            "name": d.name,
            "ranges": [[hexa(lo), hexa(hi)] for lo, hi in d.ranges],
            "call_file": d.attr_text("DW_AT_call_file"),
            "call_line": int(d.attr_text("DW_AT_call_line") or 0) or None,
        }
        for d in levels
    ]


def line_at(path: Path, address: int) -> list[Any] | None:
    """[file, line] of the line-table row covering ``address``."""
    out = run("llvm-dwarfdump", f"--lookup=0x{address:x}", str(path))
    m = re.search(r"Line info: file '([^']+)', line (\d+)", out)
    return [m.group(1), int(m.group(2))] if m else None


def analyse_chain(img: Vmlinux) -> tuple[dict[str, Any], str]:
    outer_name, chain, callee = INLINE_CHAIN
    for cu in img.dwarf:
        for holder in cu.walk():
            if holder.tag != "DW_TAG_subprogram" or not holder.ranges:
                continue
            holder_sym = img.containing(holder.ranges[0][0])
            if holder_sym is None or split_name(holder_sym.name)[0] != outer_name:
                continue
            levels = find_chain(holder)
            if levels is None:
                continue
            inner = levels[-1]
            sec = img.section_at(holder_sym.value)
            calls = [
                i
                for i in img.insns(sec.name if sec else ".text")
                if i.mnemonic.startswith("call")
                and i.target == callee
                and any(lo <= i.address < hi for lo, hi in inner.ranges)
            ]
            if not calls:
                continue
            call = calls[0]
            return (
                {
                    "function": holder_sym.name,
                    "function_dwarf": holder.name,
                    "function_address": hexa(holder_sym.value),
                    "chain": chain_levels(levels),
                    "call_address": hexa(call.address),
                    "call_offset": call.address - holder_sym.value,
                    "call_target": call.target,
                    "return_address": hexa(call.end),
                    "return_offset": call.end - holder_sym.value,
                    "call_instruction_line": line_at(img.path, call.address),
                    "return_address_line": line_at(img.path, call.end),
                    "note": "chain is outermost first; call_file/call_line of each level is "
                    "where it was inlined into the level above",
                },
                "present",
            )
    return {"function": outer_name, "chain": list(chain)}, "absent"


def analyse_banner(img: Vmlinux) -> tuple[dict[str, Any], str]:
    sym = img.symbol(BANNER)
    if sym is None:
        return {}, "absent"
    raw = read_bytes(img.path, img.sections, sym.value, sym.elf_size)
    return {
        "address": hexa(sym.value),
        "elf_size": sym.elf_size,
        "text": raw.rstrip(b"\0").decode(),
    }, "present"


def producers(img: Image) -> list[str]:
    return sorted(
        {text for cu in img.dwarf if (text := cu.attr_text("DW_AT_producer")) is not None}
    )


def cu_names(img: Image) -> list[str]:
    return [cu.attr_text("DW_AT_name") or "" for cu in img.dwarf]


def section_list(img: Image, relocs: dict[str, int] | None = None) -> list[dict[str, Any]]:
    out = []
    for sec in img.sections:
        if sec.name.startswith((".debug", ".rela.debug")) or sec.index == 0:
            continue
        entry = {
            "index": sec.index,
            "name": sec.name,
            "type": sec.type,
            "address": hexa(sec.address),
            "size": sec.size,
            "flags": sec.flags,
            "align": sec.align,
        }
        if relocs is not None:
            entry["relocations"] = relocs.get(sec.name, 0)
        out.append(entry)
    return out


def analyse_vmlinux(path: Path, build: dict[str, Any] | None) -> dict[str, Any]:
    img = Vmlinux(path)
    facts: dict[str, Any] = {}
    result: dict[str, Any] = {}

    header = elf_header(path)
    result["file"] = path.name
    result["file_size"] = path.stat().st_size
    result["elf_type"] = header["Type"]
    result["machine"] = header["Machine"]
    result["entry"] = header["Entry point address"]
    result["build_id"] = read_build_id(path)
    facts["build_id"] = status(result["build_id"] is not None)
    result["comment"] = read_comment(path)
    result["dwarf_producers"] = producers(img)
    result["dwarf_units"] = cu_names(img)
    result["build"] = build
    result["text_ranges"] = {
        name: hexa(s.value) if (s := img.symbol(name)) else None for name in TEXT_MARKERS
    }
    facts["text_ranges"] = status(all(result["text_ranges"].values()))
    result["sections"] = section_list(img)
    result["linux_banner"], facts["linux_banner"] = analyse_banner(img)

    result["duplicate_statics"], facts["duplicate_statics"] = analyse_duplicates(img)
    result["global_and_statics"], facts["renamed_beside_global"] = analyse_global_and_statics(img)
    clones = analyse_suffixes(img)
    result["clones"] = clones
    for kind in ("constprop", "isra", "part", "cold"):
        facts[f"clone.{kind}"] = status(bool(clones[kind]))
    promotions = analyse_promotions(img)
    result["promotions"] = promotions
    for kind in PROMOTION_KINDS:
        facts[f"promotion.{kind}"] = status(bool(promotions[kind]))
    result["inlined_everywhere"] = []
    for name in INLINED_EVERYWHERE:
        entry, state = analyse_inlined(img, name)
        entry["state"] = state
        result["inlined_everywhere"].append(entry)
        facts[f"inlined_everywhere.{name}"] = state
    result["removed"], facts["removed"] = analyse_removed(img)
    result["noreturn_last_call"], facts["noreturn_last_call"] = analyse_noreturn(img)
    result["inline_chain"], facts["inline_chain"] = analyse_chain(img)
    result["functions_ending_in_call"] = analyse_last_calls(img)
    result["data"], facts["duplicate_static_data"] = analyse_data(img)
    result["text_symbols"] = [img.describe(s) for s in img.kallsyms]

    properties: dict[str, Any] = {}
    for prop, per_image in EXPECTED.items():
        want = per_image[path.name]
        got = facts[prop]
        if isinstance(want, tuple):
            properties[prop] = {"status": "not_applicable", "reason": want[1], "observed": got}
        else:
            properties[prop] = {"status": got, "expected": want}
    result["properties"] = properties
    return result


# --------------------------------------------------------------------------
# Modules (ET_REL)
# --------------------------------------------------------------------------


def relocation_counts(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    current = None
    for line in run("readelf", "-rW", str(path)).splitlines():
        m = re.match(r"^Relocation section '([^']+)'.* contains (\d+) entr", line)
        if m:
            current = m.group(1)
            target = current[len(".rela") :] if current.startswith(".rela") else current
            counts[target] = int(m.group(2))
    return counts


# objdump -d -r -w prints a relocation after the instruction it patches:
# "call 1c <name_show+0x1c>\t18: R_X86_64_PLT32\tsample_sprintf-0x4"
_RELOC_RE = re.compile(r"\t([0-9a-f]+): R_X86_64_\w+\t([^\s+-]+)")


def module_calls(path: Path, functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls in each function section, the callee taken from the relocation."""
    calls = []
    for section in sorted({f["section"] for f in functions}):
        out = run("objdump", "-d", "-r", "-w", "-j", section, str(path))
        for line in out.splitlines():
            m = _INSN_RE.match(line)
            if not m or not m.group(3).startswith("call"):
                continue
            address = int(m.group(1), 16)
            end = address + len(m.group(2).split())
            r = _RELOC_RE.search(m.group(4))
            owner = next(
                (
                    f
                    for f in functions
                    if f["section"] == section
                    and int(f["offset"], 16) <= address < int(f["offset"], 16) + f["elf_size"]
                ),
                None,
            )
            calls.append(
                {
                    "section": section,
                    "function": owner["name"] if owner else None,
                    "call_offset": hexa(address),
                    "return_offset": hexa(end),
                    "target": r.group(2) if r else None,
                    "last_instruction": owner is not None
                    and int(owner["offset"], 16) + owner["elf_size"] == end,
                }
            )
    return calls


def module_chain(img: Image, calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The inline chain inside a module function; offsets are section-relative."""
    _, _, callee = INLINE_CHAIN
    for cu in img.dwarf:
        for holder in cu.walk():
            if holder.tag != "DW_TAG_subprogram" or not holder.ranges:
                continue
            levels = find_chain(holder)
            if levels is None:
                continue
            for call in calls:
                offset = int(call["call_offset"], 16)
                if call["target"] == callee and any(
                    lo <= offset < hi for lo, hi in levels[-1].ranges
                ):
                    return {
                        "function": holder.name,
                        "section": call["section"],
                        "chain": chain_levels(levels),
                        "call_offset": call["call_offset"],
                        "return_offset": call["return_offset"],
                        "call_target": callee,
                    }
    return None


def analyse_module(path: Path, build: dict[str, Any] | None) -> dict[str, Any]:
    img = Image(path)
    header = elf_header(path)
    by_index = {str(s.index): s for s in img.sections}
    functions: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    undefined: list[str] = []
    for sym in img.symbols:
        if sym.ndx == "UND":
            undefined.append(sym.name)
            continue
        sec = by_index.get(sym.ndx)
        base, parts = split_name(sym.name)
        entry = {
            "name": sym.name,
            "base": base,
            "suffixes": parts,
            "section": sec.name if sec else sym.ndx,
            "offset": hexa(sym.value),
            "elf_size": sym.elf_size,
            "bind": sym.bind,
            "nm_type": sym.letter,
        }
        (functions if sym.type == "FUNC" else objects).append(entry)
    functions.sort(key=lambda e: (e["section"], e["offset"]))
    aliases = []
    for a in functions:
        for b in functions:
            if a["name"] < b["name"] and (a["section"], a["offset"]) == (b["section"], b["offset"]):
                aliases.append([a["name"], b["name"]])
    modinfo = []
    sec = next((s for s in img.sections if s.name == ".modinfo"), None)
    if sec is not None:
        with path.open("rb") as f:
            f.seek(sec.offset)
            modinfo = [s.decode() for s in f.read(sec.size).split(b"\0") if s]
    clones = [f["name"] for f in functions if {p[0] for p in f["suffixes"]} & set(CLONE_KINDS)]
    calls = module_calls(path, functions)
    return {
        "file": path.name,
        "file_size": path.stat().st_size,
        "elf_type": header["Type"],
        "machine": header["Machine"],
        "build_id": read_build_id(path),
        "comment": read_comment(path),
        "dwarf_producers": producers(img),
        "build": build,
        "sections": section_list(img, relocation_counts(path)),
        "functions": functions,
        "objects": sorted(objects, key=lambda e: (e["section"], e["offset"])),
        "undefined_symbols": sorted(undefined),
        "aliases": aliases,
        "clones": clones,
        "modinfo": modinfo,
        "shares_static_name_with_vmlinux": [
            f["name"] for f in functions if f["base"] == DUPLICATE_STATIC
        ],
        "calls": calls,
        "inline_chain": module_chain(img, calls),
        "note": "ET_REL: symbol values are offsets in their own section, every section "
        "starts at 0, DWARF needs the .rela.debug_* relocations applied",
    }


# --------------------------------------------------------------------------


def tool_version(*argv: str) -> str | None:
    try:
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    return next((ln for ln in lines if re.search(r"\d+\.\d+", ln)), lines[0] if lines else None)


def load_build_info(path: Path | None, previous: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-file compiler and flags: from build.sh's TSV, else the old manifest."""
    info: dict[str, dict[str, Any]] = {}
    if path is None:
        for section in ("images", "modules"):
            for name, entry in previous.get(section, {}).items():
                if entry.get("build"):
                    info[name] = entry["build"]
        return info
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        name, compiler, cflags, ldflags = line.split("\t")
        info[name] = {
            "compiler": compiler,
            "compile_flags": cflags.split(),
            "link_flags": ldflags.split(),
        }
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=HERE / "MANIFEST.json")
    parser.add_argument("--build-info", type=Path, help="TSV written by build.sh")
    parser.add_argument(
        "--check", action="store_true", help="fail if an expected property is missing"
    )
    args = parser.parse_args()

    previous: dict[str, Any] = {}
    if args.output.exists():
        previous = json.loads(args.output.read_text())
    builds = load_build_info(args.build_info, previous)
    tools = (
        previous.get("tools", {})
        if args.build_info is None
        else {
            "gcc": tool_version("gcc", "--version"),
            "ld": tool_version("ld", "--version"),
            "clang": tool_version("clang", "--version"),
            "ld.lld": tool_version("ld.lld", "--version"),
            "llvm-dwarfdump": tool_version("llvm-dwarfdump", "--version"),
            "binutils (nm/readelf/objdump)": tool_version("readelf", "--version"),
        }
    )

    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "description": "Kernel-like x86-64 ELF images built from src/ by build.sh; all facts "
        "below were read back from the binaries (nm, readelf, objdump, llvm-dwarfdump).",
        "link_address": "0xffffffff81000000",
        "conventions": {
            "addresses": "link-time virtual addresses (hex strings); modules: section offsets",
            "elf_size": "st_size from .symtab",
            "kallsyms_size": "distance to the next higher text symbol inside _stext.._etext or "
            "_sinittext.._einittext, what an oops prints after the slash",
            "suffixes": "[kind, number] pairs after the base name, in order",
        },
        "tools": tools,
        "images": {},
        "modules": {},
    }
    failures = []
    for name in IMAGES:
        entry = analyse_vmlinux(HERE / name, builds.get(name))
        manifest["images"][name] = entry
        for prop, state in entry["properties"].items():
            if state["status"] != "not_applicable" and state["status"] != state["expected"]:
                failures.append(
                    f"{name}: {prop} is {state['status']}, expected {state['expected']}"
                )
    for name in MODULES:
        entry = analyse_module(HERE / name, builds.get(name))
        manifest["modules"][name] = entry
        if entry["elf_type"].split()[0] != "REL":
            failures.append(f"{name}: not ET_REL")
        if not entry["shares_static_name_with_vmlinux"]:
            failures.append(f"{name}: no {DUPLICATE_STATIC}")
        if not any(s["name"].startswith(".text.") for s in entry["sections"]):
            failures.append(f"{name}: no per-function .text.<name> sections")

    args.output.write_text(json.dumps(manifest, indent=1) + "\n")
    for failure in failures:
        print(f"manifest.py: {failure}", file=sys.stderr)
    return 1 if failures and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
