"""``symbolize``: addresses and ``name+off[/size]`` strings to source, addr2line-style.

The same resolution as ``decode`` (suffix-aware names, kallsyms sizes, duplicates reported as
ambiguous), for queries that do not come from a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ltosyms.decode.decode import Decoder
from ltosyms.decode.frames import FrameQuery, ResolvedFrame
from ltosyms.errors import LtosymsError, UsageError
from ltosyms.oops.records import FrameRole

# `name+0xOFF[/0xSIZE] [module]`, `0xADDR` or `ADDR` (hex without 0x, as nm prints it).
_SYMBOLIC = re.compile(
    r"^(?P<name>[^\s+/\[\]]+)\+(?P<offset>0x[0-9a-fA-F]+|\d+)"
    r"(?:/(?P<size>0x[0-9a-fA-F]+|\d+))?(?:\s+\[(?P<module>[\w-]+)(?:\s+(?P<bid>[0-9a-f]+))?\])?$"
)
_ADDRESS = re.compile(r"^(?:0x)?(?P<address>[0-9a-fA-F]{1,16})$")


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolizeQuery:
    text: str
    frame: FrameQuery


@dataclass(frozen=True, slots=True, kw_only=True)
class Symbolized:
    query: SymbolizeQuery
    resolved: ResolvedFrame


def parse_query(text: str, role: FrameRole, kaslr_offset: int = 0) -> SymbolizeQuery:
    """One query: ``name+off[/size] [module]`` or a (runtime, when ``kaslr_offset``) address."""
    stripped = text.strip()
    match = _SYMBOLIC.match(stripped)
    if match:
        size = match.group("size")
        return SymbolizeQuery(
            text=stripped,
            frame=FrameQuery(
                symbol=match.group("name"),
                offset=int(match.group("offset"), 0),
                size=int(size, 0) if size else None,
                module=match.group("module"),
                module_build_id=match.group("bid"),
                runtime_address=None,
                role=role,
            ),
        )
    match = _ADDRESS.match(stripped)
    if match:
        runtime_address = int(match.group("address"), 16)
        return SymbolizeQuery(
            text=stripped,
            frame=FrameQuery(
                symbol=None,
                offset=runtime_address - kaslr_offset,
                size=None,
                module=None,
                module_build_id=None,
                runtime_address=None,
                role=role,
            ),
        )
    raise UsageError(f"cannot read {stripped!r}: expected ADDR or NAME+OFF[/SIZE] [MODULE]")


def symbolize(decoder: Decoder, query: SymbolizeQuery) -> Symbolized:
    frame = query.frame
    warnings: list[str] = []
    resolver = decoder.resolver(frame.module, frame.module_build_id, warnings)
    if resolver is None:
        detail = warnings[0] if warnings else "not found (give --modules DIR)"
        raise LtosymsError(f"module {frame.module}: {detail}")
    if frame.symbol is None:
        assert frame.offset is not None
        resolution = resolver.resolve_link_address(frame.offset, frame.role)
    else:
        resolution = resolver.resolve_named(frame)
    return Symbolized(query=query, resolved=resolver.finish(frame, resolution, []))
