"""What a vmlinux says about its build, and the cleanup rule that follows (``--rule auto``).

Three cheap clues, none needing DWARF:

* the kernel version, from the ``linux_banner`` string (init/version.c) stored in ``.rodata``;
* the compiler, from ``.comment`` ("Debian clang version 14.0.6" / "GCC: (Debian 12.2.0...)");
* LTO, from the ``Linux`` note of type ``LINUX_ELFNOTE_LTO_INFO`` (include/linux/elfnote-lto.h,
  5.13+: ``ELFNOTE32("Linux", 0x101, 1)`` when ``CONFIG_LTO``) and from ThinLTO's
  ``.llvm.<N>`` promotion suffixes among the kept symbols (full LTO makes none).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ltosyms.elf.image import KernelImage
from ltosyms.elf.symtab import SymbolTable
from ltosyms.errors import InputError
from ltosyms.names.kallsyms import (
    CLEANUP_BY_NAME,
    CleanupRule,
    cleanup_rule_for,
    parse_kernel_version,
)
from ltosyms.names.suffixes import SuffixKind, parse_name
from ltosyms.stores import Memo, remembered

LINUX_ELFNOTE_LTO_INFO = 0x101  # include/linux/elfnote-lto.h
_BANNER_LIMIT = 512  # init/version.c: "Linux version " UTS_RELEASE " (" ... ")\n", well below
_CLANG = re.compile(rb"clang version [^\0]*")
_GCC = re.compile(rb"GCC: [^\0]*")


@dataclass(frozen=True, slots=True)
class BuildFacts:
    """What the vmlinux says about its own build, read cheaply (no DWARF)."""

    banner: str | None  # the `linux_banner` string, "Linux version 6.1.192 (...)"
    version: tuple[int, int, int] | None
    compiler: str | None  # "clang" or "gcc", from .comment (or the banner)
    compiler_ident: str | None  # the .comment string naming the compiler
    lto_note: bool | None  # include/linux/elfnote-lto.h LINUX_ELFNOTE_LTO_INFO; None: no note
    llvm_symbols: int  # kept symbols carrying a ThinLTO `.llvm.<N>` promotion suffix
    clang_lto: bool
    # Functions renamed `name.N`: clang's full LTO renames clashing statics that way (clang
    # without LTO never suffixes a function); the only clue when the LTO note is missing.
    numbered_functions: int = 0

    @property
    def evidence(self) -> tuple[str, ...]:
        """Why :attr:`clang_lto` is what it is, one short phrase per clue."""
        clues = []
        if self.compiler_ident:
            clues.append(f".comment: {self.compiler_ident}")
        if self.lto_note is not None:
            clues.append(f"LTO note: {'yes' if self.lto_note else 'no'}")
        clues.append(f"{self.llvm_symbols} .llvm. symbols")
        if self.numbered_functions:
            clues.append(f"{self.numbered_functions} functions renamed name.N")
        return tuple(clues)


@dataclass(frozen=True, slots=True)
class RuleChoice:
    """The cleanup rule the report is about, and why it was chosen."""

    rule: CleanupRule
    automatic: bool
    reason: str


def read_build_facts(
    image: KernelImage, table: SymbolTable, memo: Memo[None, BuildFacts] | None = None
) -> BuildFacts:
    """The facts of ``image``; with ``memo``, taken from it or kept there (counting the
    ``.llvm.`` names among ~90,000 kept symbols is a noticeable part of a short decode)."""
    return remembered(memo, None, lambda: _read_build_facts(image, table))


def _read_build_facts(image: KernelImage, table: SymbolTable) -> BuildFacts:
    banner = _banner(image, table)
    comment = _comment(image)
    compiler: str | None = None
    ident: str | None = None
    clang = _CLANG.search(comment)
    gcc = _GCC.search(comment)
    if clang:
        compiler, ident = "clang", _line_of(comment, clang.start())
    elif gcc:
        compiler, ident = "gcc", _line_of(comment, gcc.start())
    elif banner and "clang version" in banner:
        compiler = "clang"
    elif banner and ("gcc" in banner or "GCC" in banner):
        compiler = "gcc"
    lto_note = _lto_note(image)
    llvm_symbols = sum(1 for i in table.kept_indexes if ".llvm." in table.names[i])
    numbered_functions = 0
    if compiler == "clang" and not llvm_symbols:
        numbered_functions = sum(
            1
            for i in table.kept_indexes
            if table.nm_types[i] in "tT"
            and parse_name(table.names[i]).kinds == (SuffixKind.NUMERIC,)
        )
    # ThinLTO leaves .llvm. names even where the note is missing (kernels before 5.13); full LTO
    # leaves no names but sets the note. gcc LTO never got into mainline, so the note alone
    # means clang unless the compiler says otherwise.
    clang_lto = (
        llvm_symbols > 0
        or (bool(lto_note) and compiler != "gcc")
        or (compiler == "clang" and numbered_functions > 0)
    )
    return BuildFacts(
        banner=banner,
        version=parse_kernel_version(banner) if banner else None,
        compiler=compiler,
        compiler_ident=ident,
        lto_note=lto_note,
        llvm_symbols=llvm_symbols,
        clang_lto=clang_lto,
        numbered_functions=numbered_functions,
    )


def choose_rule(facts: BuildFacts, requested: str = "auto") -> RuleChoice:
    """The cleanup rule to report on: ``requested`` by name, or the build's own for ``auto``."""
    if requested != "auto":
        try:
            rule = CLEANUP_BY_NAME[requested]
        except KeyError:
            known = ", ".join(["auto", *CLEANUP_BY_NAME])
            raise InputError(f"unknown cleanup rule {requested!r} (known: {known})") from None
        own = cleanup_rule_for(facts.version, facts.clang_lto)
        return RuleChoice(rule, automatic=False, reason=f"the build's own rule is {own.name}")
    rule = cleanup_rule_for(facts.version, facts.clang_lto)
    return RuleChoice(rule, automatic=True, reason=_why(facts, rule))


def _why(facts: BuildFacts, rule: CleanupRule) -> str:
    version = ".".join(map(str, facts.version)) if facts.version else "unknown version"
    if not facts.clang_lto:
        built = f"built with {facts.compiler}" if facts.compiler else "no clang LTO evidence"
        return f"kernel {version}, {built}, no clang LTO: names are printed as in the ELF"
    if facts.version is None:
        return "clang LTO, but no linux_banner to tell the kernel version: assuming full names"
    return f"kernel {version} built with clang LTO; {rule.name} is the rule of {rule.applies_to}"


def _banner(image: KernelImage, table: SymbolTable) -> str | None:
    for symbol in table.by_name("linux_banner"):
        length = symbol.elf_size or _BANNER_LIMIT
        try:
            raw = image.read(symbol.link_address, min(length, _BANNER_LIMIT))
        except InputError:
            continue
        text = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
        if text.startswith("Linux version"):
            return text
    return None


def _comment(image: KernelImage) -> bytes:
    section = image.get_section(".comment")
    return image.section_bytes(section) if section is not None else b""


def _line_of(blob: bytes, position: int) -> str:
    start = blob.rfind(b"\0", 0, position) + 1
    end = blob.find(b"\0", position)
    return blob[start : end if end >= 0 else len(blob)].decode("utf-8", "replace")


def _lto_note(image: KernelImage) -> bool | None:
    """The LTO flag of the kernel's ``Linux`` notes, None when the note is absent."""
    endian = "<" if image.little_endian else ">"
    for section in image.sections:
        if not section.name.startswith(".note"):
            continue
        blob = image.section_bytes(section)
        offset = 0
        # Elf64_Nhdr is three 32-bit words; name and desc are padded to 4 (gABI "Note Section").
        while offset + 12 <= len(blob):
            namesz, descsz, note_type = struct.unpack_from(endian + "III", blob, offset)
            offset += 12
            name = blob[offset : offset + namesz].rstrip(b"\0")
            offset += (namesz + 3) & ~3
            desc = blob[offset : offset + descsz]
            offset += (descsz + 3) & ~3
            if name == b"Linux" and note_type == LINUX_ELFNOTE_LTO_INFO and len(desc) == 4:
                return bool(struct.unpack(endian + "I", desc)[0])
    return None
