"""Name a call instruction and its target as a kernel developer reads them.

``call at schedule_timeout+0x8f: call schedule``, objdump style: the call site is named by the
symbol holding it, the target by the symbol it enters. What the target means depends on how
the kernel calls (docs/kernel-facts.md#call-instructions):

* a direct call names its callee (``direct``); in a module the displacement is zero in the
  ``.ko`` and the relocation at the call names the callee (``R_X86_64_PLT32``/``PC32``,
  ``R_AARCH64_CALL26``/``JUMP26``), a kernel function found by name at load or the module's
  own function (docs/kernel-facts.md#kaslr-and-modules);
* a call into a retpoline thunk ``__x86_indirect_thunk_<reg>`` (and the call-depth and ITS
  variants) is the indirect call ``call *%<reg>`` (``thunk``);
* a call into a static-call trampoline ``__SCT__<name>`` is ``static_call(<name>)(...)`` in the
  source; the function it reaches is whatever the key ``__SCK__<name>`` held at run time
  (``static_call``);
* ``call *%rax``, ``call *0x18(%r8)``, ``blr x8`` are ``indirect``: the register's value is
  not in the image; a RIP-relative slot (a paravirt ``pv_ops`` entry) is named.

Names are derived from the records of :mod:`ltosyms.disasm.records` and the image's symbol
table (and a module's relocations) whenever a frame is resolved; nothing here is stored.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ltosyms.disasm.decoder import (
    AARCH64,
    ADDRESS_MASK,
    RETPOLINE_THUNK_PREFIXES,
    THUNK_ARRAY_SUFFIX,
)
from ltosyms.disasm.records import CallKind, CallSite, PatchReason
from ltosyms.elf.image import KernelImage
from ltosyms.elf.symtab import Symbol, SymbolTable

if TYPE_CHECKING:
    from ltosyms.elf.relocations import ModuleRelocations, Relocation

# include/linux/static_call_types.h STATIC_CALL_TRAMP_PREFIX and STATIC_CALL_KEY_PREFIX.
STATIC_CALL_TRAMPOLINE_PREFIX = "__SCT__"
STATIC_CALL_KEY_PREFIX = "__SCK__"

# capstone's x86 mnemonics carry AT&T size suffixes objdump (binutils 2.40) leaves out for
# branches: `callq` is `call`.
_MNEMONICS = {"callq": "call", "jmpq": "jmp", "retq": "ret", "lcallq": "lcall", "ljmpq": "ljmp"}
_RIP_SLOT = re.compile(r"^\*(?P<disp>-?0x[0-9a-f]+|-?\d+)?\(%rip\)$")


class TargetKind(enum.Enum):
    DIRECT = "direct"
    INDIRECT = "indirect"
    THUNK = "thunk"
    STATIC_CALL = "static_call"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodePoint:
    """A place in an image as people name it: ``symbol+offset``; ``section+offset`` where no
    symbol covers it (modules); the link address itself as a last resort (vmlinux)."""

    symbol: str | None
    offset: int
    section: str | None = None
    link_address: int | None = None

    def __str__(self) -> str:
        if self.symbol is None and self.section is None:
            return f"{self.link_address or 0:#x}"
        name = self.symbol if self.symbol is not None else self.section
        if not self.offset and self.symbol is not None:
            return str(name)
        sign = "-" if self.offset < 0 else "+"
        return f"{name}{sign}{abs(self.offset):#x}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTarget:
    """Where a call goes. ``symbol``/``offset`` name the function entered (direct), the thunk
    (thunk) or the trampoline (static_call); None for indirect calls."""

    kind: TargetKind
    symbol: str | None
    offset: int | None
    # In the calling image; None for a module's call into the kernel (found by name at load)
    # or when the image does not know it.
    link_address: int | None
    # The register or memory operand of an indirect call (`*%rax`, `*0x18(%r8)`, `x8`),
    # the register a thunk stands for, with a named slot where one is known.
    operand: str | None = None
    # Every function an alternative site may call at run time, when more than one.
    alternatives: tuple[str, ...] = ()

    @property
    def static_call_name(self) -> str | None:
        if self.kind is TargetKind.STATIC_CALL and self.symbol is not None:
            return self.symbol.removeprefix(STATIC_CALL_TRAMPOLINE_PREFIX)
        return None

    def __str__(self) -> str:
        """The operand as the call line prints it."""
        if self.kind is TargetKind.THUNK:
            return f"{self.operand or '?'} via {self.symbol}"
        if self.kind is TargetKind.STATIC_CALL:
            return f"static_call({self.static_call_name})"
        if self.kind is TargetKind.INDIRECT:
            return self.operand or "?"
        if self.alternatives:
            return " or ".join(self.alternatives) + " (alternatives)"
        if self.symbol is not None:
            return f"{self.symbol}+{self.offset:#x}" if self.offset else self.symbol
        return f"{self.link_address:#x}" if self.link_address is not None else "?"


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedCall:
    """A call instruction named: where it is, the instruction, where it goes."""

    site: CodePoint
    mnemonic: str  # `call`, `bl`, `blr` (x86 size suffixes dropped, as objdump prints them)
    target: CallTarget

    def __str__(self) -> str:
        return f"{self.mnemonic} {self.target}"


def code_point(
    symbols: SymbolTable, link_address: int, image: KernelImage | None = None
) -> CodePoint:
    """``link_address`` named by the symbol the kernel would print for it (kallsyms
    semantics); a module address outside every symbol by its section."""
    symbol = named_symbol_at(symbols, link_address)
    if symbol is not None:
        return CodePoint(symbol=symbol.name, offset=link_address - symbol.link_address)
    image = image if image is not None else symbols.image
    section = image.section_at(link_address)
    if image.is_module and section is not None:
        return CodePoint(
            symbol=None, offset=link_address - section.link_address, section=section.name
        )
    return CodePoint(symbol=None, offset=0, link_address=link_address)


def plain_mnemonic(mnemonic: str) -> str:
    return _MNEMONICS.get(mnemonic, mnemonic)


def thunk_register(thunk: str) -> str | None:
    """``*%rax`` for ``__x86_indirect_thunk_rax`` (and the call-depth and ITS variants):
    arch/x86/lib/retpoline.S names each thunk after the register it jumps through."""
    if _is_thunk_array(thunk):
        return None  # the array, not a register
    for prefix in RETPOLINE_THUNK_PREFIXES:
        if thunk.startswith(prefix):
            register = thunk[len(prefix) :]
            return f"*%{register}" if register.isalnum() else None
    return None


def named_symbol_at(symbols: SymbolTable, link_address: int) -> Symbol | None:
    """The symbol that names code at ``link_address``: the one kallsyms prints, but for the
    start of an array of retpoline thunks (`__x86_indirect_thunk_array`, first in kallsyms
    order at the thunk of %rax; arch/x86/lib/retpoline.S) the alias that says the register."""
    symbol = symbols.lookup(link_address)
    if symbol is None or not _is_thunk_array(symbol.name):
        return symbol
    for alias in symbols.symbols_at(symbol.link_address):
        if thunk_register(alias.name) is not None:
            return alias
    return symbol


def _is_thunk_array(name: str) -> bool:
    return name.startswith(RETPOLINE_THUNK_PREFIXES) and name.endswith(THUNK_ARRAY_SUFFIX)


def name_call(
    site: CallSite,
    symbols: SymbolTable,
    relocations: ModuleRelocations | None = None,
) -> NamedCall | None:
    """The call at ``site`` named (None when the instruction there is not a call)."""
    if not site.is_call:
        return None
    image = symbols.image
    point = code_point(symbols, site.link_address, image)
    mnemonic = plain_mnemonic(site.mnemonic)
    target = None
    if relocations is not None and image.is_module:
        target = _relocated_target(site, symbols, relocations)
    if target is None:
        target = _image_target(site, symbols)
    return NamedCall(site=point, mnemonic=mnemonic, target=target)


def _image_target(site: CallSite, symbols: SymbolTable) -> CallTarget:
    """The target as the image's own bytes say (vmlinux; module calls without relocation)."""
    if site.kind is CallKind.THUNK and site.thunk is not None:
        operand = thunk_register(site.thunk)
        return CallTarget(
            kind=TargetKind.THUNK,
            symbol=site.thunk,
            offset=0,
            link_address=site.target_link_address,
            operand=operand,
        )
    if site.kind is CallKind.INDIRECT:
        return CallTarget(
            kind=TargetKind.INDIRECT,
            symbol=None,
            offset=None,
            link_address=None,
            operand=_indirect_operand(site, symbols),
        )
    targets = site.possible_targets or (
        (site.target_link_address,) if site.target_link_address is not None else ()
    )
    if not targets:
        return CallTarget(kind=TargetKind.DIRECT, symbol=None, offset=None, link_address=None)
    named = [(target, named_symbol_at(symbols, target)) for target in targets]
    if len(named) > 1:
        texts = tuple(
            str(CodePoint(symbol=s.name, offset=t - s.link_address)) if s is not None else f"{t:#x}"
            for t, s in named
        )
        return CallTarget(
            kind=TargetKind.DIRECT, symbol=None, offset=None, link_address=None, alternatives=texts
        )
    target, symbol = named[0]
    if symbol is None:
        return CallTarget(kind=TargetKind.DIRECT, symbol=None, offset=None, link_address=target)
    return _classified(symbol.name, target - symbol.link_address, target)


def _classified(name: str, offset: int, link_address: int | None) -> CallTarget:
    """A direct call into ``name+offset``: through a thunk or a trampoline, or direct."""
    if offset == 0 and name.startswith(STATIC_CALL_TRAMPOLINE_PREFIX):
        return CallTarget(
            kind=TargetKind.STATIC_CALL, symbol=name, offset=0, link_address=link_address
        )
    operand = thunk_register(name) if offset == 0 else None
    if operand is not None:
        return CallTarget(
            kind=TargetKind.THUNK, symbol=name, offset=0, link_address=link_address, operand=operand
        )
    return CallTarget(kind=TargetKind.DIRECT, symbol=name, offset=offset, link_address=link_address)


def _indirect_operand(site: CallSite, symbols: SymbolTable) -> str:
    """``*%rax`` as printed; a RIP-relative slot named (``*pv_ops+0x30(%rip)``), the slot's
    address being the instruction's end plus the displacement."""
    operand = site.op_str
    match = _RIP_SLOT.match(operand)
    if match is None or site.patch is PatchReason.RETPOLINE:
        return operand
    displacement = int(match["disp"] or "0", 0)
    slot = (site.link_address + len(site.raw) + displacement) & ADDRESS_MASK
    symbol = symbols.lookup(slot)
    if symbol is None:
        return operand
    return f"*{CodePoint(symbol=symbol.name, offset=slot - symbol.link_address)}(%rip)"


def _relocated_target(
    site: CallSite, symbols: SymbolTable, relocations: ModuleRelocations
) -> CallTarget | None:
    """A module's call named by the relocation the loader applies inside the instruction."""
    from ltosyms.elf.relocations import ARM64_BRANCHES

    length = len(site.raw) or site.length
    end = site.link_address + length
    for relocation in relocations.within(site.link_address, end):
        if not relocation.pc_relative:
            continue
        if symbols.machine == AARCH64:
            if relocation.type not in ARM64_BRANCHES:
                continue
            # aaelf64 CALL26/JUMP26: imm26 = (S + A - P) >> 2, so the target is S + A.
            displacement = relocation.addend
        else:
            # x86-64 psABI PC32/PLT32: the field holds S + A - P and the CPU adds the
            # instruction's end to it, so the target is S + A + (end - P).
            displacement = relocation.addend + end - relocation.link_address
        if site.kind is CallKind.INDIRECT:
            # `call *disp(%rip)`: the relocation names the slot, not the callee.
            return CallTarget(
                kind=TargetKind.INDIRECT,
                symbol=None,
                offset=None,
                link_address=None,
                operand=f"*{_relocated_point(relocation, displacement, symbols)}(%rip)",
            )
        return _relocated_callee(relocation, displacement, symbols)
    return None


def _relocated_point(relocation: Relocation, displacement: int, symbols: SymbolTable) -> str:
    if relocation.symbol_link_address is None:
        return str(CodePoint(symbol=relocation.symbol, offset=displacement))
    return str(code_point(symbols, relocation.symbol_link_address + displacement))


def _relocated_callee(
    relocation: Relocation, displacement: int, symbols: SymbolTable
) -> CallTarget:
    if relocation.symbol_link_address is None:
        # Undefined in the module: the kernel's (or another module's) exported symbol, which
        # the loader finds by this exact name (kernel/module/main.c simplify_symbols).
        return _classified(relocation.symbol, displacement, None)
    target = relocation.symbol_link_address + displacement
    # A section symbol (`.text.lkdtm_do_action - 4`, gcc's `.text + 0x1f8`) or a local
    # function: named by the function the target is in.
    symbol = named_symbol_at(symbols, target)
    if symbol is None:
        return CallTarget(
            kind=TargetKind.DIRECT,
            symbol=relocation.symbol,
            offset=displacement,
            link_address=target,
        )
    return _classified(symbol.name, target - symbol.link_address, target)
