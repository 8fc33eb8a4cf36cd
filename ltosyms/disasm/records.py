"""The records the machine-code layer answers with.

Kept apart from the code that computes them (capstone sweeps, the ``Code:`` comparison): a
decode served from the index reads these records without loading the disassembler or the
comparison rules.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ltosyms.disasm.view import CodeView


class PatchReason(enum.Enum):
    """Why code bytes at run time may differ from the image's."""

    # From the image's site tables: exact.
    ALTERNATIVE = "alternative"
    PARAVIRT = "paravirt"
    RETPOLINE = "retpoline"
    RETURN_THUNK = "return thunk"
    # Instruction-level rules, for images without tables (modules, old kernels) and for patch
    # kinds kept in tables we do not read (jump labels, static calls, ftrace):
    CALL_OR_JUMP = "call/jmp site"  # static calls, thunks, __fentry__, jump labels taken
    NOP = "nop"  # jump labels not taken, ftrace, alternatives (any NOP length, arm64 HINTs)
    # The loader writes module addresses into fields that are zero in the .ko (RELA).
    MODULE_RELOCATION = "module relocation"
    # x86 KASLR adds the random offset to absolute 32/64-bit addresses
    # (arch/x86/boot/compressed/misc.c handle_relocations).
    KASLR_RELOCATION = "kaslr relocation"


class CallKind(enum.Enum):
    NOT_A_CALL = "not-a-call"
    DIRECT = "direct"  # call rel32, bl imm26
    INDIRECT = "indirect"  # call *%rax, call *0x8(%rbx), blr x8, a paravirt call
    THUNK = "indirect-thunk"  # call __x86_indirect_thunk_rax: indirect, through a retpoline


class NoCallSite(enum.Enum):
    """The answer "no instruction ends at this return address", as a memo of call sites keeps
    it (to a memo, None means "not known yet")."""

    NO_INSTRUCTION = "no instruction ends here"


class SweepMethod(enum.Enum):
    FUNCTION_SWEEP = "function-sweep"  # decoded forward from the function start: exact
    BACKWARD_WINDOW = "backward-window"  # no usable start: guessed from the bytes before it
    FIXED_WIDTH = "fixed-width"  # arm64: every instruction is 4 bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSite:
    """The instruction ending at ``return_address``; ``link_address`` is the call site."""

    return_address: int
    link_address: int
    length: int  # return_address - link_address: the instruction's length at run time
    raw: bytes  # the image's bytes of the instruction (of the replacement for alternatives)
    mnemonic: str
    op_str: str
    kind: CallKind
    target_link_address: int | None  # direct calls whose target the image knows
    # Every target an alternative site may call at run time (one per replacement).
    possible_targets: tuple[int, ...]
    thunk: str | None  # the retpoline thunk called, for kind THUNK
    # Set when the call exists only after boot-time patching (see ltosyms.disasm.patching):
    # the vmlinux has other bytes there, the crashed kernel had this call.
    patch: PatchReason | None
    method: SweepMethod

    @property
    def is_call(self) -> bool:
        return self.kind is not CallKind.NOT_A_CALL

    @property
    def is_indirect(self) -> bool:
        return self.kind in (CallKind.INDIRECT, CallKind.THUNK)

    @property
    def call_site(self) -> int:
        return self.link_address

    def fields(self) -> tuple[list[int | None], list[str | None]]:
        """The call as plain numbers and strings (:attr:`raw` apart): how the index keeps
        one, alone or inside a resolved frame; :meth:`from_fields` makes it again."""
        numbers: list[int | None] = [
            self.return_address,
            self.link_address,
            self.length,
            self.target_link_address,
            *self.possible_targets,
        ]
        texts: list[str | None] = [
            self.mnemonic,
            self.op_str,
            self.kind.value,
            self.thunk,
            None if self.patch is None else self.patch.value,
            self.method.value,
        ]
        return numbers, texts

    @classmethod
    def from_fields(
        cls, numbers: Sequence[int | None], texts: Sequence[str | None], raw: bytes
    ) -> CallSite:
        """The call :meth:`fields` gave ``numbers`` and ``texts`` of; ValueError or
        TypeError for fields of none."""
        return_address, link_address, length, target, *targets = numbers
        mnemonic, op_str, kind, thunk, patch, method = texts
        return cls(
            return_address=_number(return_address),
            link_address=_number(link_address),
            length=_number(length),
            raw=raw,
            mnemonic=_text(mnemonic),
            op_str=_text(op_str),
            kind=CallKind(kind),
            target_link_address=target,
            possible_targets=tuple(_number(address) for address in targets),
            thunk=thunk,
            patch=None if patch is None else PatchReason(patch),
            method=SweepMethod(method),
        )


def _number(value: int | None) -> int:
    if value is None:
        raise TypeError("a call site's number is missing")
    return value


def _text(value: str | None) -> str:
    if value is None:
        raise TypeError("a call site's text is missing")
    return value


class CodeVerdict(enum.Enum):
    MATCH = "match"  # every compared byte is equal
    PATCHED = "patched-only"  # differences only where the kernel patches code: a match
    MISMATCH = "mismatch"  # the image is not the code that ran
    UNKNOWN = "unknown"  # no Code: bytes ("Unable to access opcode bytes") or no image bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchedSite:
    """A run of ``Code:`` bytes that may differ from the image: patched at boot or load."""

    offset: int  # of the site's first byte, from the faulting instruction
    length: int
    reason: PatchReason


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeMatch:
    """How the ``Code:`` bytes compare with the image's bytes at the same address."""

    verdict: CodeVerdict
    compared: int  # bytes compared (the image may cover only part of the Code: line)
    differing: int  # bytes that differ, explained or not
    unexplained_offsets: tuple[int, ...]  # of differing bytes, from the faulting instruction
    patched_sites: tuple[PatchedSite, ...]

    @property
    def is_match(self) -> bool:
        return self.verdict in (CodeVerdict.MATCH, CodeVerdict.PATCHED)

    @property
    def unexplained(self) -> int:
        return len(self.unexplained_offsets)


# What a comparison of a Code: line with one image depends on besides the image: the bytes,
# the index of the faulting byte among them, the architecture and the faulting byte's link
# address (the image is read there).
CodeMatchKey = tuple[bytes, int, str, int]
# What a Code: line's analysis depends on besides the image: the name of the IP's image
# (None: unknown), the bytes, the faulting byte's index, the architecture and its link
# address (None: unknown).
CodeAnalysisKey = tuple[str | None, bytes, int, str, int | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeInstruction:
    """One instruction of a ``Code:`` line, or bytes that decode to none (``mnemonic`` "")."""

    offset: int  # bytes from the faulting instruction; negative before it
    link_address: int | None  # when the faulting instruction's link address is known
    raw: bytes  # in memory order
    mnemonic: str
    op_str: str
    is_fault: bool

    @property
    def is_valid(self) -> bool:
        return bool(self.mnemonic)


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeListing:
    """The ``Code:`` bytes disassembled, with where the faulting instruction starts."""

    arch: str  # x86_64 or aarch64
    instructions: tuple[CodeInstruction, ...]
    # Index of the faulting instruction's first byte in the Code: bytes; None for a line
    # without a marker (offsets then count from the first byte).
    marker_index: int | None
    marker_link_address: int | None
    # Leading bytes left undecoded: no start before the marker lands on it (x86 only).
    undecoded_prefix: int

    @property
    def fault(self) -> CodeInstruction | None:
        for instruction in self.instructions:
            if instruction.is_fault:
                return instruction
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeReport:
    """A ``Code:`` line's listing and its comparison with the image that ran it."""

    listing: CodeListing | None
    match: CodeMatch | None
    image: str | None  # "vmlinux" or the module the faulting IP is in
    # Not part of the stored analysis (a decode adds them): the listing in a developer's
    # terms (labels, named targets; from the image when the kernel printed no bytes), and the
    # IP's runtime address when the log gives it.
    view: CodeView | None = None
    marker_runtime_address: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeAnalysis:
    """What a ``Code:`` line gives a decode: its report and the warnings it raised (a pure
    function of the printed bytes, the faulting instruction's link address and the image)."""

    report: CodeReport
    warnings: tuple[str, ...]
