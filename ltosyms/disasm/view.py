"""The records of a ``Code:`` listing's view (:mod:`ltosyms.disasm.code_view` builds them).

Kept apart from the code that computes them, like :mod:`ltosyms.disasm.records`: a decode that
finds a view in the index reads it without loading the disassembler or the comparison rules.
"""

from __future__ import annotations

import enum
import marshal
from dataclasses import dataclass

from ltosyms.disasm.decoder import ADDRESS_MASK, X86_64, normalize_arch
from ltosyms.disasm.records import CodeListing, listing_from_bytes, listing_to_bytes
from ltosyms.disasm.targets import CodePoint

# Store kind of views; bump when the record or what it holds changes.
CODE_VIEW_KIND = "code-view/1"

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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class CodeView:
    source: ViewSource
    rows: tuple[CodeRow, ...]  # one per instruction of the listing, in its order
    # Why nothing is listed (an IP in data), or where an IMAGE listing comes from.
    note: str | None
    # The listing the rows describe when it was made from the image (source IMAGE).
    listing: CodeListing | None = None

    def to_bytes(self) -> bytes:
        return marshal.dumps(
            (
                self.source.value,
                [
                    (
                        row.kind.value,
                        _point_fields(row.label),
                        row.mnemonic,
                        row.operands,
                        _point_fields(row.target),
                        row.comment,
                        _point_fields(row.starts_at),
                    )
                    for row in self.rows
                ],
                self.note,
                None if self.listing is None else listing_to_bytes(self.listing),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CodeView:
        """A view :meth:`to_bytes` stored; :class:`ValueError` for other bytes."""
        try:
            source, rows, note, listing = marshal.loads(data)
            return cls(
                ViewSource(source),
                tuple(
                    CodeRow(
                        RowKind(kind),
                        _point(label),
                        str(mnemonic),
                        str(operands),
                        _point(target),
                        None if comment is None else str(comment),
                        _point(starts_at),
                    )
                    for kind, label, mnemonic, operands, target, comment, starts_at in rows
                ),
                None if note is None else str(note),
                None if listing is None else listing_from_bytes(listing),
            )
        except (EOFError, TypeError) as error:
            raise ValueError(f"not a stored code view: {error}") from None


def _point_fields(point: CodePoint | None) -> tuple[str | None, int, str | None, int | None] | None:
    if point is None:
        return None
    return (point.symbol, point.offset, point.section, point.link_address)


def _point(fields: tuple[str | None, int, str | None, int | None] | None) -> CodePoint | None:
    if fields is None:
        return None
    symbol, offset, section, link_address = fields
    return CodePoint(symbol, int(offset), section, link_address)


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
