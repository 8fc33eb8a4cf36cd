"""Render ``Code:`` listings and their comparison with the image: text lines and JSON dicts.

The text follows scripts/decodecode (objdump layout): address, bytes, instruction, and
``<-- trapping instruction`` after the faulting one, marked ``*`` in the first column. Addresses
are link-time addresses when known; else, as decodecode prints them, offsets from the first
byte of the line (``2a:``), which is also what branch targets are computed from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ltosyms.disasm import AARCH64, CodeInstruction, CodeListing, CodeMatch, CodeVerdict

# objdump pads the bytes column for 7 bytes per line; kernel instructions rarely exceed it.
_BYTES_COLUMN = 7 * 3
_MNEMONIC_COLUMN = 7


def _address(listing: CodeListing, instruction: CodeInstruction) -> str:
    if instruction.link_address is not None:
        return f"{instruction.link_address:016x}"
    return f"{(listing.marker_index or 0) + instruction.offset:x}"


def _raw(listing: CodeListing, instruction: CodeInstruction) -> str:
    if listing.arch == AARCH64 and len(instruction.raw) == 4:
        # arm64 prints instruction words, as the oops does.
        return f"{int.from_bytes(instruction.raw, 'little'):08x}"
    return " ".join(f"{byte:02x}" for byte in instruction.raw)


def _text(listing: CodeListing, instruction: CodeInstruction) -> str:
    if not instruction.is_valid:
        return "(bad)"
    if not instruction.op_str:
        return instruction.mnemonic
    return f"{instruction.mnemonic:<{_MNEMONIC_COLUMN}}{instruction.op_str}"


def code_listing_lines(listing: CodeListing) -> Iterator[str]:
    """One line per instruction, decodecode style."""
    width = max((len(_address(listing, i)) for i in listing.instructions), default=0)
    for instruction in listing.instructions:
        mark = "*" if instruction.is_fault else " "
        line = (
            f"{mark} {_address(listing, instruction):>{width}}:  "
            f"{_raw(listing, instruction):<{_BYTES_COLUMN}} {_text(listing, instruction)}"
        ).rstrip()
        if instruction.is_fault:
            line += "\t<-- trapping instruction"
        yield line


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


def code_listing_json(listing: CodeListing, match: CodeMatch | None = None) -> dict[str, Any]:
    """The ``code`` object of a decoded report (JSON edge: plain dicts and strings)."""
    document: dict[str, Any] = {
        "arch": listing.arch,
        "fault_address": (
            None if listing.marker_link_address is None else f"{listing.marker_link_address:#x}"
        ),
        "instructions": [
            {
                "address": (
                    None if instruction.link_address is None else f"{instruction.link_address:#x}"
                ),
                "offset": instruction.offset,
                "bytes": instruction.raw.hex(),
                "mnemonic": instruction.mnemonic or None,
                "operands": instruction.op_str,
                "fault": instruction.is_fault,
            }
            for instruction in listing.instructions
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
