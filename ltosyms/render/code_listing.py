"""Render ``Code:`` listings and their comparison with the image: text lines and JSON dicts.

The text follows scripts/decodecode (objdump layout): address, bytes, instruction, and
``<-- trapping instruction`` after the faulting one, marked ``*`` in the first column. With a
view (:class:`ltosyms.disasm.view.CodeView`) each instruction is labelled as the kernel would
print its address, ``lkdtm_WARNING+0xa`` (after its runtime address when the log gives it),
call and jump targets are named, and padding and instructions cut by the line's ends say so.
Without one, addresses are link-time addresses when known; else, as decodecode prints them,
offsets from the first byte of the line (``2a:``).

:func:`decodecode_lines` prints what scripts/decode_stacktrace.sh prints for a ``Code:`` line
(its decodecode call): the line, "All code", "Code starting with the faulting instruction".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ltosyms.disasm import AARCH64, CodeInstruction, CodeListing, CodeMatch, CodeVerdict
from ltosyms.disasm.targets import CodePoint
from ltosyms.disasm.view import CodeRow, CodeView, RowKind, ViewSource

# objdump pads the bytes column for 7 bytes per line; kernel instructions rarely exceed it.
_BYTES_COLUMN = 7 * 3
_MNEMONIC_COLUMN = 7
_ADDRESS_MASK = (1 << 64) - 1
_SHOWN_PADDING_BYTES = 7
_TRAPPING = "\t<-- trapping instruction"


def _address(listing: CodeListing, instruction: CodeInstruction) -> str:
    if instruction.link_address is not None:
        return f"{instruction.link_address:016x}"
    return f"{(listing.marker_index or 0) + instruction.offset:x}"


def _raw(listing: CodeListing, raw: bytes) -> str:
    if listing.arch == AARCH64 and len(raw) == 4:
        # arm64 prints instruction words, as the oops does.
        return f"{int.from_bytes(raw, 'little'):08x}"
    return " ".join(f"{byte:02x}" for byte in raw)


def _instruction_text(mnemonic: str, operands: str) -> str:
    if not operands:
        return mnemonic
    # At least one space: `rep stosb` is longer than the column.
    return f"{mnemonic:<{_MNEMONIC_COLUMN - 1}} {operands}"


def _text(listing: CodeListing, instruction: CodeInstruction) -> str:
    if not instruction.is_valid:
        return "(bad)"
    return _instruction_text(instruction.mnemonic, instruction.op_str)


def code_listing_lines(
    listing: CodeListing, view: CodeView | None = None, marker_runtime_address: int | None = None
) -> Iterator[str]:
    """One line per instruction, decodecode style; with ``view``, labelled and named."""
    if view is not None:
        yield from _view_lines(listing, view, marker_runtime_address)
        return
    width = max((len(_address(listing, i)) for i in listing.instructions), default=0)
    for instruction in listing.instructions:
        mark = "*" if instruction.is_fault else " "
        line = (
            f"{mark} {_address(listing, instruction):>{width}}:  "
            f"{_raw(listing, instruction.raw):<{_BYTES_COLUMN}} {_text(listing, instruction)}"
        ).rstrip()
        if instruction.is_fault:
            line += _TRAPPING
        yield line


def _view_lines(
    listing: CodeListing, view: CodeView, marker_runtime_address: int | None
) -> Iterator[str]:
    if view.note is not None:
        yield f"Code: {view.note}" + (":" if view.rows else "")
    if not view.rows:
        return
    places = []
    for instruction, row in zip(listing.instructions, view.rows, strict=True):
        place = str(row.label) if row.label is not None else f"{_index(listing, instruction):x}"
        if marker_runtime_address is not None:
            runtime = (marker_runtime_address + instruction.offset) & _ADDRESS_MASK
            place = f"{runtime:016x} {place}"
        places.append(place)
    width = max(len(place) for place in places)
    for instruction, row, place in zip(listing.instructions, view.rows, places, strict=True):
        mark = "*" if instruction.is_fault else " "
        line = f"{mark} {place + ':':<{width + 1}}  {_row_bytes(listing, instruction, row)} "
        line = (line + _row_text(row)).rstrip()
        if instruction.is_fault:
            line += _TRAPPING
        yield line


def _index(listing: CodeListing, instruction: CodeInstruction) -> int:
    return (listing.marker_index or 0) + instruction.offset


def _row_bytes(listing: CodeListing, instruction: CodeInstruction, row: CodeRow) -> str:
    raw = instruction.raw
    if row.kind is RowKind.PADDING and len(raw) > _SHOWN_PADDING_BYTES:
        shown = _raw(listing, raw[:_SHOWN_PADDING_BYTES]) + " ..."
        return f"{shown:<{_BYTES_COLUMN}}"
    return f"{_raw(listing, raw):<{_BYTES_COLUMN}}"


def _row_text(row: CodeRow) -> str:
    text = _instruction_text(row.mnemonic, row.operands)
    if row.kind is RowKind.PADDING:
        return "(padding between functions)"
    if row.kind is RowKind.UNDECODED:
        return "(bad)"
    comment = f"  # {row.comment}" if row.comment is not None else ""
    if row.kind is RowKind.CUT_BEFORE:
        return f"{text}{comment}  (cut: starts at {row.starts_at}, before the line)"
    if row.kind is RowKind.CUT_AFTER:
        return f"{text}{comment}  (cut: the line ends inside it)"
    return text + comment


def decodecode_lines(listing: CodeListing, view: CodeView | None = None) -> list[str]:
    """What scripts/decodecode (6.1) prints after echoing the ``Code:`` line, as
    scripts/decode_stacktrace.sh calls it: "All code" from the line's first byte (offsets from
    it, the faulting line marked ``*`` and ``<-- trapping instruction``), a blank line, then
    "Code starting with the faulting instruction" with offsets from the marker. objdump's
    layout: ``%4x:``, a tab, up to 7 bytes per line (longer instructions go on), a tab, the
    instruction. Unlike the script, the bytes before the marker are decoded at the image's
    instruction boundaries (docs/kernel-facts.md#code-line) and targets are named."""
    if view is not None and not view.rows:
        return []  # an IP in data: nothing to disassemble
    rows: list[CodeRow | None] = list(view.rows) if view is not None else []
    rows += [None] * (len(listing.instructions) - len(rows))
    marker = listing.marker_index
    lines: list[str] = []
    if marker is not None:
        lines += ["All code", "========"]
        for instruction, row in zip(listing.instructions, rows, strict=True):
            lines += _objdump_lines(listing, instruction, row, marker + instruction.offset)
        lines.append("")
    lines += [
        "Code starting with the faulting instruction",
        "===========================================",
    ]
    for instruction, row in zip(listing.instructions, rows, strict=True):
        if instruction.offset >= 0:
            lines += _objdump_lines(listing, instruction, row, instruction.offset, mark=False)
    return lines


def _objdump_lines(
    listing: CodeListing,
    instruction: CodeInstruction,
    row: CodeRow | None,
    offset: int,
    mark: bool = True,
) -> list[str]:
    if row is not None:
        text = _row_text(row) if row.kind is not RowKind.INSTRUCTION else _objdump_text(row)
    else:
        text = _text(listing, instruction)
    if listing.arch == AARCH64 and len(instruction.raw) == 4:
        chunks = [_raw(listing, instruction.raw)]
    else:
        raw = instruction.raw
        chunks = [_raw(listing, raw[i : i + 7]) for i in range(0, len(raw), 7)] or [""]
    fault = mark and instruction.is_fault
    star = "*" if fault else ""
    if listing.arch == AARCH64:
        # objdump -d of arm64: the word, then the mnemonic and operands tab-separated.
        if row is not None and row.kind is RowKind.INSTRUCTION:
            text = f"{row.mnemonic}\t{row.operands}".rstrip()
            text += f"  # {row.comment}" if row.comment is not None else ""
        first = f"{offset:4x}:{star}\t{chunks[0]} \t{text}"
    else:
        first = f"{offset:4x}:{star}\t{chunks[0]:<{_BYTES_COLUMN - 1}} \t{text}"
    if fault:
        first += "\t" + _TRAPPING
    rest = [f"{offset + 7 * n:4x}:\t{chunk} " for n, chunk in enumerate(chunks[1:], start=1)]
    return [first, *rest]


def _objdump_text(row: CodeRow) -> str:
    """objdump's punctuation: x86 operands without a space after commas."""
    operands = row.operands.replace(", ", ",") if "%" in row.operands else row.operands
    text = _instruction_text(row.mnemonic, operands)
    return f"{text}  # {row.comment}" if row.comment is not None else text


def code_match_line(match: CodeMatch, image_name: str) -> str:
    """One sentence on whether the ``Code:`` bytes are the image's."""
    if match.verdict is CodeVerdict.UNKNOWN:
        return f"Code: not compared with {image_name} (no bytes to compare)"
    if match.verdict is CodeVerdict.MATCH:
        return f"Code: matches {image_name} ({match.compared} bytes)"
    if match.verdict is CodeVerdict.PATCHED:
        reasons = sorted({site.reason.value for site in match.patched_sites})
        return (
            f"Code: matches {image_name} ({match.compared} bytes; {match.differing} differ at "
            f"{len(match.patched_sites)} boot-patched site(s): {', '.join(reasons)})"
        )
    offsets = ", ".join(f"{offset:+#x}" for offset in match.unexplained_offsets[:8])
    more = ", ..." if match.unexplained > 8 else ""
    return (
        f"Code: DOES NOT match {image_name}: {match.unexplained} of {match.compared} bytes "
        f"differ unexplained (at {offsets}{more} from the faulting instruction); "
        "this image is probably not the kernel that crashed"
    )


def _point_json(point: CodePoint | None) -> dict[str, Any] | None:
    if point is None:
        return None
    return {"symbol": point.symbol, "offset": point.offset, "section": point.section}


def code_listing_json(
    listing: CodeListing,
    match: CodeMatch | None = None,
    view: CodeView | None = None,
    marker_runtime_address: int | None = None,
    in_module: bool = False,
) -> dict[str, Any]:
    """The ``code`` object of a decoded report (JSON edge: plain dicts and strings).

    A module has no link addresses a user could look up: ``address`` and ``fault_address``
    are null there, ``label`` (``symbol+offset`` or ``section+offset``) says where."""
    instructions = listing.instructions
    rows: tuple[CodeRow | None, ...] = (None,) * len(instructions)
    if view is not None:
        rows = view.rows if view.rows else ()
        instructions = instructions if view.rows else ()

    def link(address: int | None) -> str | None:
        return None if address is None or in_module else f"{address:#x}"

    document: dict[str, Any] = {
        "arch": listing.arch,
        "fault_address": link(listing.marker_link_address),
        "runtime_fault_address": (
            None if marker_runtime_address is None else f"{marker_runtime_address:#x}"
        ),
        "listed_from": view.source.value if view is not None else ViewSource.LOG.value,
        "note": view.note if view is not None else None,
        "instructions": [
            {
                "address": link(instruction.link_address),
                "runtime_address": (
                    None
                    if marker_runtime_address is None
                    else f"{(marker_runtime_address + instruction.offset) & _ADDRESS_MASK:#x}"
                ),
                "label": str(row.label) if row is not None and row.label is not None else None,
                "offset": instruction.offset,
                "bytes": instruction.raw.hex(),
                "mnemonic": instruction.mnemonic or None,
                # A module's branch targets as capstone computes them are addresses in
                # ltosyms' own section layout: named instead.
                "operands": (
                    row.operands
                    if in_module and row is not None and row.kind is RowKind.INSTRUCTION
                    else instruction.op_str
                ),
                "kind": row.kind.value if row is not None else None,
                "text": row.text if row is not None and row.text else None,
                "target": _point_json(row.target) if row is not None else None,
                "comment": row.comment if row is not None else None,
                "starts_at": _point_json(row.starts_at) if row is not None else None,
                "fault": instruction.is_fault,
            }
            for instruction, row in zip(instructions, rows, strict=True)
        ],
    }
    if match is not None:
        document["match"] = {
            "verdict": match.verdict.value,
            "compared": match.compared,
            "differing": match.differing,
            "unexplained_offsets": list(match.unexplained_offsets),
            "patched_sites": [
                {"offset": site.offset, "length": site.length, "reason": site.reason.value}
                for site in match.patched_sites
            ],
        }
    return document
