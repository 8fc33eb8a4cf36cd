"""The instructions of an oops ``Code:`` line, with the faulting one marked.

x86 prints 42 bytes before RIP, ``<xx>`` at RIP, then 21 more (arch/x86/kernel/dumpstack.c
``show_opcodes``, 6.1; ``Code: Unable to access opcode bytes at ...`` when the memory could not
be read); arm64 prints five 32-bit words with the faulting one in ``( )``
(arch/arm64/kernel/traps.c ``dump_kernel_instr``). Decoding from the marker on is exact; the
bytes before it are decoded from the earliest start offset whose instructions end exactly on
the marker without invalid bytes -- syzkaller's "best guess" (pkg/report) and what a reader of
scripts/decodecode's "All code" does by eye.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ltosyms.disasm.decoder import (
    AARCH64,
    ADDRESS_MASK,
    ARM64_INSTRUCTION,
    decode_one,
    iter_instructions,
    normalize_arch,
    tidy_op_str,
)
from ltosyms.disasm.records import CodeInstruction, CodeListing
from ltosyms.errors import InputError


@dataclass(frozen=True, slots=True, kw_only=True)
class Piece:
    """A decoded span of a byte string: ``start`` is an index, ``mnemonic`` "" if invalid."""

    start: int
    size: int
    mnemonic: str
    op_str: str


def code_bytes_from_words(words: Sequence[int], little_endian: bool = True) -> bytes:
    """Memory-order bytes of arm64 ``Code:`` words (printed ``%08x`` as instruction values)."""
    if little_endian:
        return b"".join((word & 0xFFFFFFFF).to_bytes(4, "little") for word in words)
    return b"".join((word & 0xFFFFFFFF).to_bytes(4, "big") for word in words)


def _exact(arch: str, data: bytes, start: int, base: int) -> list[Piece] | None:
    """Pieces of ``data[start:]`` if it splits into valid instructions exactly, else None."""
    pieces = []
    end = start
    for address, size, mnemonic, op_str in iter_instructions(arch, data[start:], base + start):
        pieces.append(
            Piece(
                start=address - base, size=size, mnemonic=mnemonic, op_str=tidy_op_str(arch, op_str)
            )
        )
        end = address - base + size
    return pieces if end == len(data) else None


def _bounded(arch: str, data: bytes, start: int, end: int, base: int) -> list[Piece]:
    """Pieces of ``data[start:end]``, none crossing ``end``; the undecodable rest is one piece."""
    pieces = [
        Piece(start=address - base, size=size, mnemonic=mnemonic, op_str=tidy_op_str(arch, op_str))
        for address, size, mnemonic, op_str in iter_instructions(
            arch, data[start:end], base + start
        )
    ]
    decoded_to = pieces[-1].start + pieces[-1].size if pieces else start
    if decoded_to < end:
        pieces.append(Piece(start=decoded_to, size=end - decoded_to, mnemonic="", op_str=""))
    return pieces


def _landing(arch: str, data: bytes, anchor: int, base: int) -> tuple[list[Piece], int]:
    """Pieces of ``data[:anchor]`` from the earliest start that ends exactly on ``anchor``."""
    head = data[:anchor]
    for start in range(anchor):
        before = _exact(arch, head, start, base)
        if before is not None:
            return (
                [Piece(start=0, size=start, mnemonic="", op_str="")] if start else []
            ) + before, start
    return ([Piece(start=0, size=anchor, mnemonic="", op_str="")] if anchor else []), anchor


def decode_anchored(
    arch: str,
    data: bytes,
    marker_index: int,
    base: int = 0,
    boundaries: Sequence[int] = (),
    padding: Sequence[tuple[int, int]] = (),
) -> tuple[list[Piece], int]:
    """Pieces covering all of ``data`` with an instruction starting at ``marker_index`` and at
    each of ``boundaries`` (indexes known from the image to start instructions: function
    starts, the first instruction of the line found by a sweep from its function's start);
    also how many leading bytes stayed undecoded. Without a known start before the marker,
    the bytes before it are decoded from the earliest offset that lands on it.
    ``padding`` holds [start, end) index ranges the image knows to be no function's code
    (alignment between functions, the zeroed gap between module sections): each is one piece
    without instruction, not a run of ``addb %al,(%rax)`` decoded out of step.
    ``base`` is the address of ``data[0]``, from which ``op_str`` branch targets are computed.
    """
    if arch == AARCH64:
        first = marker_index % ARM64_INSTRUCTION
        pieces = [Piece(start=0, size=first, mnemonic="", op_str="")] if first else []
        last = first + (len(data) - first) // ARM64_INSTRUCTION * ARM64_INSTRUCTION
        for start in range(first, last, ARM64_INSTRUCTION):
            one = decode_one(AARCH64, data[start : start + ARM64_INSTRUCTION], base + start)
            mnemonic, op_str = (one[2], tidy_op_str(arch, one[3])) if one else ("", "")
            pieces.append(
                Piece(start=start, size=ARM64_INSTRUCTION, mnemonic=mnemonic, op_str=op_str)
            )
        if last < len(data):
            pieces.append(Piece(start=last, size=len(data) - last, mnemonic="", op_str=""))
        return pieces, first
    gaps = {
        max(start, 0): min(end, len(data))
        for start, end in padding
        if max(start, 0) < min(end, len(data)) and not start <= marker_index < end
    }
    known = {b for b in boundaries if 0 <= b < len(data)} | set(gaps) | set(gaps.values())
    known.discard(len(data))
    anchors = sorted(known | {marker_index})
    if anchors[0] in known:
        # The bytes before the first known start are the tail of an instruction that begins
        # before the line: left undecoded rather than guessed.
        prefix = anchors[0]
        pieces = [Piece(start=0, size=prefix, mnemonic="", op_str="")] if prefix else []
    else:
        pieces, prefix = _landing(arch, data, anchors[0], base)
    for start, end in zip(anchors, [*anchors[1:], len(data)], strict=True):
        if start in gaps:
            gap_end = min(gaps[start], end)
            pieces.append(Piece(start=start, size=gap_end - start, mnemonic="", op_str=""))
            if gap_end < end:
                pieces += _bounded(arch, data, gap_end, end, base)
        else:
            pieces += _bounded(arch, data, start, end, base)
    return pieces, prefix


def disassemble_code(
    code: bytes,
    marker_index: int | None,
    arch: str,
    link_address_of_marker: int | None = None,
    boundaries: Sequence[int] = (),
    padding: Sequence[tuple[int, int]] = (),
) -> CodeListing:
    """The listing of an oops ``Code:`` line.

    ``code`` holds the bytes in memory order (arm64 words converted by
    :func:`code_bytes_from_words`); ``marker_index`` is the index of the byte printed in
    ``<>`` or of the first byte of the word printed in ``()`` (None: the line had no marker).
    Instructions carry link-time addresses when the marker's link address is known, offsets
    from the marker always. ``boundaries`` are indexes known to start instructions
    (:attr:`ImageWindow.boundaries` of the matching image), which keeps the bytes before the
    marker and the padding between functions from being decoded out of step; ``padding``
    (:attr:`ImageWindow.padding`) are the byte ranges between functions, one piece each.
    """
    arch = normalize_arch(arch)
    code = bytes(code)
    anchor = 0 if marker_index is None else marker_index
    if not 0 <= anchor < max(len(code), 1):
        raise InputError(f"Code: marker at byte {anchor} of {len(code)}")
    if marker_index is None:
        link_address_of_marker = None
    # Without a link address, targets are offsets from the first byte, as objdump prints them.
    base = 0
    if link_address_of_marker is not None:
        base = (link_address_of_marker - anchor) & ADDRESS_MASK
    pieces, prefix = (
        decode_anchored(arch, code, anchor, base, boundaries, padding) if code else ([], 0)
    )
    instructions = tuple(
        CodeInstruction(
            offset=piece.start - anchor,
            link_address=(
                None
                if link_address_of_marker is None
                else (link_address_of_marker + piece.start - anchor) & ADDRESS_MASK
            ),
            raw=code[piece.start : piece.start + piece.size],
            mnemonic=piece.mnemonic,
            op_str=piece.op_str,
            is_fault=marker_index is not None and piece.start == marker_index,
        )
        for piece in pieces
    )
    return CodeListing(
        arch=arch,
        instructions=instructions,
        marker_index=marker_index,
        marker_link_address=link_address_of_marker,
        undecoded_prefix=prefix,
    )
