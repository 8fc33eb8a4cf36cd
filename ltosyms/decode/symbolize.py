"""``symbolize``: addresses and ``name+off[/size]`` strings to source, addr2line-style.

The same resolution as ``decode`` (suffix-aware names, kallsyms sizes, duplicates reported as
ambiguous), for queries that do not come from a log. A query is one of:

* ``0xADDR`` or ``ADDR`` (hex, as nm prints it; runtime when a KASLR offset is given);
* ``NAME+OFF[/SIZE]``, with its module as ``[module]`` (as a trace prints it) or a bare word;
* a trace line pasted whole: a printk timestamp ``[ 11.5]`` and a ``? `` before the frame
  are dropped (``[ 11.5] ? try_to_wake_up+0x24e/0x2a0``);
* a bare function NAME: every copy of it (every symbol the name resolves to, LTO suffixes
  included), each at its start, as ``scripts/faddr2line`` answers ``func`` (Linux 6.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ltosyms.decode.candidates import NameResolution
from ltosyms.decode.decode import Decoder
from ltosyms.decode.frames import FrameQuery, ResolvedFrame
from ltosyms.errors import LtosymsError, UsageError
from ltosyms.oops.records import FrameRole

# `name+0xOFF[/0xSIZE] [module]` (or `module` bare), `0xADDR` or `ADDR` (hex without 0x, as
# nm prints it).
_SYMBOLIC = re.compile(
    r"^(?P<name>[^\s+/\[\]]+)\+(?P<offset>0x[0-9a-fA-F]+|\d+)"
    r"(?:/(?P<size>0x[0-9a-fA-F]+|\d+))?"
    r"(?:\s+(?:\[(?P<module>[\w-]+)(?:\s+(?P<bid>[0-9a-f]+))?\]|(?P<bare_module>[\w-]+)))?$"
)
_ADDRESS = re.compile(r"^(?:0x)?(?P<address>[0-9a-fA-F]{1,16})$")
# A C identifier, or an LTO/compiler-suffixed one (`name.llvm.123`, `name.cold`), and its
# module as `[module]` or a bare word.
_NAME = re.compile(
    r"^(?P<name>[A-Za-z_$][\w$]*(?:\.[\w$]+)*)"
    r"(?:\s+(?:\[(?P<module>[\w-]+)\]|(?P<bare_module>[\w-]+)))?$"
)
# What a console puts before a frame: printk's `[    11.512345]` (or `[T123]` caller ids
# after it, Linux 5.10 CONFIG_PRINTK_CALLER) and the `? ` of an unreliable slot.
_TRACE_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)*(?:\?\s+)?")


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolizeQuery:
    text: str
    frame: FrameQuery
    every_copy: bool = False  # a bare name: each symbol it resolves to, at its start


@dataclass(frozen=True, slots=True, kw_only=True)
class Symbolized:
    query: SymbolizeQuery
    resolved: ResolvedFrame


def parse_query(text: str, role: FrameRole, kaslr_offset: int = 0) -> SymbolizeQuery:
    """One query (see the module note); :class:`UsageError` for text that is none."""
    stripped = text.strip()
    # A bare address first: a bulk stream is nothing else, and such a text has no prefix
    # and no "+" (the other forms are tried on what is left after a prefix).
    match = _ADDRESS.match(stripped)
    if match:
        return _address_query(stripped, int(match.group("address"), 16), role, kaslr_offset)
    query = _TRACE_PREFIX.sub("", stripped, count=1)
    match = _SYMBOLIC.match(query)
    if match:
        size = match.group("size")
        return SymbolizeQuery(
            text=stripped,
            frame=FrameQuery(
                symbol=match.group("name"),
                offset=_number(match.group("offset")),
                size=_number(size) if size else None,
                module=match.group("module") or match.group("bare_module"),
                module_build_id=match.group("bid"),
                role=role,
            ),
        )
    match = _ADDRESS.match(query)
    if match:
        return _address_query(stripped, int(match.group("address"), 16), role, kaslr_offset)
    match = _NAME.match(query)
    if match:
        module = match.group("module") or match.group("bare_module")
        # A function's start is where it is entered, not a return address.
        frame = FrameQuery(
            symbol=match.group("name"), offset=0, module=module, role=FrameRole.EXACT_IP
        )
        return SymbolizeQuery(text=stripped, frame=frame, every_copy=True)
    raise UsageError(
        f"cannot read {shown_query(stripped)!r}: expected ADDR, NAME+OFF[/SIZE] [MODULE] or "
        "NAME [MODULE]"
    )


# How much of a query an error message shows. A printk record is at most 1,024 characters
# (CONSOLE_LOG_MAX, kernel/printk/printk.c): a pasted trace line with its prefixes fits; a
# stream may hold lines of 65,536 (ltosyms.limits.MAX_LINE_CHARS).
SHOWN_QUERY_CHARS = 2048


def shown_query(text: str) -> str:
    """``text`` as a message names it: whole, or its first :data:`SHOWN_QUERY_CHARS`."""
    return text if len(text) <= SHOWN_QUERY_CHARS else text[:SHOWN_QUERY_CHARS] + "..."


def _number(text: str) -> int:
    """``0x``-prefixed hex, else decimal: ``+010`` is ten (``int(text, 0)`` refuses a
    leading zero)."""
    return int(text, 16) if text.startswith("0x") else int(text, 10)


def _address_query(
    text: str, runtime_address: int, role: FrameRole, kaslr_offset: int
) -> SymbolizeQuery:
    return SymbolizeQuery(
        text=text, frame=FrameQuery(symbol=None, offset=runtime_address - kaslr_offset, role=role)
    )


def symbolize(decoder: Decoder, query: SymbolizeQuery) -> Symbolized:
    """The answer to one query that names one place (not a bare name)."""
    (result,) = symbolize_all(decoder, replace(query, every_copy=False))
    return result


def symbolize_all(decoder: Decoder, query: SymbolizeQuery) -> list[Symbolized]:
    """The answers to one query: one, or for a bare name one per copy of the function (one
    unresolved answer when no symbol has the name). :class:`LtosymsError` when the query's
    module cannot be used."""
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
    if not query.every_copy or len(resolution.candidates) < 2:
        return [Symbolized(query=query, resolved=resolver.finish(frame, resolution, []))]
    return [
        Symbolized(
            query=query,
            resolved=resolver.finish(
                frame, NameResolution(candidates=(candidate,), evidence=resolution.evidence), []
            ),
        )
        for candidate in resolution.candidates
    ]
