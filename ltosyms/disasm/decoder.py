"""The one door to capstone: decoder handles, architecture names, one-instruction helpers.

No other module of ltosyms imports capstone. x86 is decoded in AT&T syntax, as objdump and
scripts/decodecode print it (what kernel developers read); ``detail`` is off except for the
operand-field query, which only the ``Code:`` comparison needs.

capstone is loaded on the first decode, not with this module: a decode served from the index
(its frames already stored) never disassembles, and loading the library is a measurable part
of a short run. Every decode here calls capstone 5's library through
:mod:`ltosyms.disasm.capstone_library`, without importing the package (~50 ms of a short
run); the package serves arm64 with details, and everything when its library is another
version or the host another kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ltosyms.errors import InputError

X86_64 = "x86_64"
AARCH64 = "aarch64"

_ARCH_NAMES = {
    "x86_64": X86_64,
    "x86-64": X86_64,
    "amd64": X86_64,
    "x86": X86_64,
    "aarch64": AARCH64,
    "arm64": AARCH64,
}

# Intel SDM vol. 2, 2.3.11: "The maximum length of an Intel 64 and IA-32 instruction remains
# 15 bytes". arm64 instructions are one 32-bit word (Arm ARM A1.3).
X86_MAX_INSTRUCTION = 15
ARM64_INSTRUCTION = 4

ADDRESS_MASK = (1 << 64) - 1

X86_CALLS = frozenset({"call", "callq", "lcall", "lcallq"})
# Branch-with-link forms (Arm ARM C6.2: BL, BLR, and BLRAA/BLRAAZ/BLRAB/BLRABZ with PAuth).
ARM64_CALLS = frozenset({"bl", "blr", "blraa", "blraaz", "blrab", "blrabz"})

# A direct call into one of these is an indirect call through a retpoline thunk
# (arch/x86/lib/retpoline.S: __x86_indirect_thunk_<reg> since 4.15,
# __x86_indirect_call_thunk_<reg> with call depth tracking since 6.2,
# __x86_indirect_its_thunk_<reg> for ITS since 6.15 and its stable backports).
RETPOLINE_THUNK_PREFIXES = (
    "__x86_indirect_thunk_",
    "__x86_indirect_call_thunk_",
    "__x86_indirect_its_thunk_",
)
# The start of each array of thunks (`__x86_indirect_thunk_array`), an alias of the first.
THUNK_ARRAY_SUFFIX = "_array"


# (address, size, mnemonic, op_str), as capstone's disasm_lite yields it.
RawInstruction = tuple[int, int, str, str]


def normalize_arch(arch: str) -> str:
    """``x86_64`` or ``aarch64`` for the names users and ELF headers use (``arm64``, ``amd64``)."""
    try:
        return _ARCH_NAMES[arch.lower()]
    except KeyError:
        raise InputError(f"unsupported architecture {arch!r} (x86_64 and arm64 are)") from None


_handles: dict[tuple[str, bool], Any] = {}


def _handle(arch: str, detail: bool = False) -> Any:
    key = (arch, detail)
    handle = _handles.get(key)
    if handle is None and key not in _handles:
        handle = _handles[key] = _library_handle(arch, detail)
    if handle is None:
        import capstone  # lazy: see the module note

        if arch == X86_64:
            handle = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
            handle.syntax = capstone.CS_OPT_SYNTAX_ATT
        elif arch == AARCH64:
            # capstone 5 name; capstone 6 renames it CS_ARCH_AARCH64.
            arm64 = getattr(capstone, "CS_ARCH_ARM64", None)
            if arm64 is None:
                arm64 = capstone.CS_ARCH_AARCH64
            handle = capstone.Cs(arm64, capstone.CS_MODE_ARM)
        else:
            raise InputError(f"unsupported architecture {arch!r}")
        handle.detail = detail
        _handles[key] = handle
    return handle


def _library_handle(arch: str, detail: bool) -> Any:
    from ltosyms.disasm import capstone_library as library

    if arch == X86_64:
        return library.open_handle(library.CS_ARCH_X86, library.CS_MODE_64, True, detail)
    if arch == AARCH64 and not detail:
        return library.open_handle(library.CS_ARCH_ARM64, library.CS_MODE_ARM, False)
    return None


def iter_instructions(arch: str, data: bytes, address: int) -> Iterator[RawInstruction]:
    """Instructions of ``data`` (first byte at ``address``) until the first invalid one."""
    return _handle(arch).disasm_lite(data, address)  # type: ignore[no-any-return]


def decode_one(arch: str, data: bytes, address: int) -> RawInstruction | None:
    """The instruction at the start of ``data``, None when the bytes are no instruction."""
    for instruction in _handle(arch).disasm_lite(data, address, 1):
        return instruction  # type: ignore[no-any-return]
    return None


def x86_operand_fields(data: bytes, address: int) -> tuple[tuple[int, int], ...]:
    """(offset, size) of the immediate and displacement of the x86 instruction at ``data[0]``:
    the fields a relocation or KASLR can rewrite (capstone ``cs_x86_encoding``)."""
    from ltosyms.disasm.capstone_library import Handle

    handle = _handle(X86_64, detail=True)
    if isinstance(handle, Handle):
        encoding = handle.x86_encoding(data, address)
        if encoding is None:
            return ()
        disp_offset, disp_size, imm_offset, imm_size = encoding
        fields = ((imm_offset, imm_size), (disp_offset, disp_size))
        return tuple((offset, size) for offset, size in fields if size)
    for insn in handle.disasm(data, address, 1):
        fields = ((insn.imm_offset, insn.imm_size), (insn.disp_offset, insn.disp_size))
        return tuple((int(offset), int(size)) for offset, size in fields if size)
    return ()


# capstone 5 prints the sign-extended imm32 of `movq $imm, %reg` in decimal
# ($18446744072639135255); objdump and every kernel developer write it in hex.
_DECIMAL_IMMEDIATE = re.compile(r"\$(\d{5,})\b")


def tidy_op_str(arch: str, op_str: str) -> str:
    """``op_str`` as objdump would print the immediates (x86: hex, not long decimals)."""
    if arch != X86_64 or "$" not in op_str:
        return op_str
    return _DECIMAL_IMMEDIATE.sub(lambda m: f"${int(m[1]):#x}", op_str)


def is_call(arch: str, mnemonic: str) -> bool:
    return mnemonic in (X86_CALLS if arch == X86_64 else ARM64_CALLS)


def direct_target(arch: str, mnemonic: str, op_str: str) -> int | None:
    """The target of a direct call or jump (capstone prints it as an absolute hex address)."""
    text = op_str.lstrip("#") if arch == AARCH64 else op_str
    if not text.startswith("0x") or (arch == X86_64 and mnemonic.startswith("l")):
        return None
    try:
        return int(text, 16) & ADDRESS_MASK
    except ValueError:
        return None
