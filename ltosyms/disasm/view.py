"""The records of a ``Code:`` listing's view (:mod:`ltosyms.disasm.code_view` builds them).

Kept apart from the code that computes them, like :mod:`ltosyms.disasm.records`: a decode that
finds a view in the index reads it without loading the disassembler or the comparison rules
(the stored form is :func:`ltosyms.index.codecs.encode_code_view`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ltosyms.disasm.decoder import ADDRESS_MASK, X86_64, normalize_arch
from ltosyms.disasm.records import CodeListing
from ltosyms.disasm.targets import CodePoint

# arch/x86/kernel/dumpstack.c show_opcodes() (6.1, 6.12): the line starts PROLOGUE_SIZE bytes
# before the IP, and "Unable to access opcode bytes at" names that start, not the IP
# (docs/kernel-facts.md#code-line).
X86_CODE_PROLOGUE = 42
X86_CODE_EPILOGUE = 21


class RowKind(enum.Enum):
    INSTRUCTION = "instruction"
    PADDING = "padding"  # no function's code: alignment, the gap between module sections
    CUT_BEFORE = "cut-before"  # the tail of an instruction that starts before the line
    CUT_AFTER = "cut-after"  # the head of an instruction that ends after the line
    UNDECODED = "undecoded"  # bytes that decode to no instruction


class ViewSource(enum.Enum):
    LOG = "log"  # the bytes the Code: line printed
    IMAGE = "image"  # the kernel printed none: the image's bytes around the IP


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeRow:
    """One instruction of a listing as a developer reads it."""

    kind: RowKind
    label: CodePoint | None  # the first byte's place; None when the IP's is unknown
    mnemonic: str  # "" for padding and undecoded bytes; x86 call/jmp/ret without suffix
    operands: str  # with a call or jump target named
    target: CodePoint | None  # the place a call or jump goes to
    comment: str | None  # the object a relocation or a RIP-relative operand refers to
    # CUT_BEFORE: where the instruction starts, before the line's first byte.
    starts_at: CodePoint | None = None

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.operands}" if self.operands else self.mnemonic


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeView:
    """The instructions a report's ``Code:`` section shows, and where they come from."""

    source: ViewSource
    rows: tuple[CodeRow, ...]  # one per instruction of the listing, in its order
    # Why nothing is listed (an IP in data), or where an IMAGE listing comes from.
    note: str | None
    # The listing the rows describe when it was made from the image (source IMAGE).
    listing: CodeListing | None = None

    @property
    def is_empty(self) -> bool:
        """Nothing to list and nothing to say (what the image gives where no function holds
        the IP)."""
        return not self.rows and self.note is None and self.listing is None


# What an image listing depends on besides the image: the name of the IP's image and the
# IP's link address.
ImageViewKey = tuple[str, int]


def marker_runtime_address(
    arch: str,
    unavailable_address: int | None,
    frame_runtime_address: int | None,
    link_address: int | None,
    kaslr_offset: int | None,
    in_module: bool,
) -> int | None:
    """The IP's runtime address when the log gives it: printed as a raw address, as the start
    of an unreadable x86 ``Code:`` line plus 42, or (vmlinux) its link address plus the KASLR
    offset. A module's sections have no fixed distance to the kernel: no offset applies."""
    if frame_runtime_address is not None:
        return frame_runtime_address
    if unavailable_address is not None and normalize_arch(arch) == X86_64:
        return (unavailable_address + X86_CODE_PROLOGUE) & ADDRESS_MASK
    if not in_module and link_address is not None and kaslr_offset is not None:
        return (link_address + kaslr_offset) & ADDRESS_MASK
    return None
