"""Put each matched, BASE-only or NEW-only group in exactly one :class:`ChangeClass`.

The rules, in order (the first that holds wins):

- NEW-only: ``new``.
- BASE-only: ``dropped_inlined`` when NEW's DWARF has inlined instances of the function
  (``DW_TAG_inlined_subroutine`` with its name and declaring file), else ``dropped_removed``.
- NEW has a clone kind (``.constprop``, ``.isra``, ``.part``, ``.cold``, ``.specialized``,
  ``.argelim``; DOMAIN §1) that BASE has not: ``specialized``, with or without the original.
- Names differ only in promotion suffixes (``.llvm.N``, ``.lto_priv.N``, ``.N``) or clone
  numbers: ``renamed`` (whatever the size did).
- Otherwise by size: ``unchanged``, ``grown`` or ``shrunk`` (a clone BASE had and NEW has not,
  e.g. gcc's ``.cold`` against clang, shows as a size change).
"""

from __future__ import annotations

from collections import Counter

from ltosyms.diff.model import ChangeClass, SymbolGroup, SymbolKind
from ltosyms.names.suffixes import SymbolName, parse_name


def clone_shape(name: str) -> tuple[str, ...]:
    """The clone kinds of a name, in order, without numbers: ``foo.part.0.cold`` -> (part, cold)."""
    return tuple(part.kind.value for part in parse_name(name).suffixes if part.kind.is_clone)


def canonical_name(name: str) -> str:
    """A name without promotion suffixes and with clone numbers blanked."""
    parsed: SymbolName = parse_name(name)
    parts = [parsed.base]
    for part in parsed.suffixes:
        if part.kind.is_promotion:
            continue
        parts.append("." + part.kind.value)
    return "".join(parts)


def classify(
    base: SymbolGroup | None, new: SymbolGroup | None, inlined_in_new: int | None
) -> ChangeClass:
    """The class of one pair; ``inlined_in_new`` counts NEW's inlined instances of BASE."""
    if base is None:
        return ChangeClass.NEW
    if new is None:
        if base.kind is SymbolKind.FUNCTION and inlined_in_new:
            return ChangeClass.DROPPED_INLINED
        return ChangeClass.DROPPED_REMOVED
    base_shapes = {clone_shape(name) for name in base.names}
    new_shapes = {clone_shape(name) for name in new.names}
    if any(shape and shape not in base_shapes for shape in new_shapes):
        return ChangeClass.SPECIALIZED
    if sorted(base.names) != sorted(new.names) and Counter(
        canonical_name(name) for name in base.names
    ) == Counter(canonical_name(name) for name in new.names):
        return ChangeClass.RENAMED
    if new.size > base.size:
        return ChangeClass.GROWN
    if new.size < base.size:
        return ChangeClass.SHRUNK
    return ChangeClass.UNCHANGED
