"""Put each matched, BASE-only or NEW-only group in exactly one :class:`ChangeClass`.

The rules, in order (the first that holds wins):

- NEW-only: ``outlined`` when BASE's DWARF has inlined instances of the function and BASE has
  no out-of-line copy of it left over (``vfs_stat``, inlined twice without LTO, a function of
  its own with it), else ``new``. ``folded`` when the other build holds the name as an alias
  of another function (decided by the matcher, :func:`ltosyms.diff.match.folded_partners`).
- BASE-only: ``dropped_inlined`` when NEW's DWARF has inlined instances of the function
  (``DW_TAG_inlined_subroutine`` with its name and declaring file), else ``dropped_removed``.
- NEW has clone kinds BASE has not (the suffix grammar of :mod:`ltosyms.names.suffixes`):
  ``split`` when the only new kind is ``.cold`` (gcc's hot/cold splitting moved unlikely
  paths out; the function is not specialized), ``specialized`` when one of them is
  ``.constprop``, ``.isra``, ``.part``, ``.specialized`` or ``.argelim``.
- The names' kinds of suffixes differ (``foo`` -> ``foo.llvm.123``, ``foo.3`` ->
  ``foo.lto_priv.0``): ``renamed``, whatever the size did. Names that differ only in numbers
  (``foo.llvm.1`` -> ``foo.llvm.2``: a ThinLTO module hash; ``foo.constprop.0`` ->
  ``foo.constprop.1``) are the same names: the compiler numbers them as it goes.
- Otherwise by size: ``unchanged``, ``grown`` or ``shrunk`` (a clone BASE had and NEW has not,
  e.g. gcc's ``.cold`` against clang, shows as a size change).
"""

from __future__ import annotations

from collections import Counter

from ltosyms.diff.model import ChangeClass, SymbolGroup, SymbolKind
from ltosyms.names.suffixes import SuffixKind, SymbolName, parse_name

_COLD = SuffixKind.COLD.value


def clone_shape(name: str) -> tuple[str, ...]:
    """The clone kinds of a name, in order, without numbers: ``foo.part.0.cold`` -> (part, cold)."""
    if name.find(".", 1) < 0:  # no suffix (parse_name's rule): most names
        return ()
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


def name_shape(name: str) -> str:
    """A name with every number blanked and every kind kept: ``foo.constprop.0.llvm.99`` ->
    ``foo.constprop.llvm``. Two names of one shape differ only in compiler-chosen numbers."""
    parsed: SymbolName = parse_name(name)
    return parsed.base + "".join("." + part.kind.value for part in parsed.suffixes)


def classify(
    base: SymbolGroup | None,
    new: SymbolGroup | None,
    inlined_in_new: int | None,
    inlined_in_base: int | None = None,
) -> ChangeClass:
    """The class of one pair; ``inlined_in_new`` counts NEW's inlined instances of BASE's
    function, ``inlined_in_base`` BASE's of NEW's (None: that build's DWARF was not read)."""
    if base is None:
        assert new is not None
        if new.kind is SymbolKind.FUNCTION and inlined_in_base:
            return ChangeClass.OUTLINED
        return ChangeClass.NEW
    if new is None:
        if base.kind is SymbolKind.FUNCTION and inlined_in_new:
            return ChangeClass.DROPPED_INLINED
        return ChangeClass.DROPPED_REMOVED
    if base.names == new.names:  # most pairs: nothing renamed, nothing cloned
        return _by_size(base, new)
    base_shapes = {clone_shape(name) for name in base.names}
    added = {clone_shape(name) for name in new.names} - base_shapes - {()}
    if added:
        known = {kind for shape in base_shapes for kind in shape}
        novel = {kind for shape in added for kind in shape} - known
        return ChangeClass.SPLIT if novel <= {_COLD} else ChangeClass.SPECIALIZED
    if len(base.names) == 1 == len(new.names):  # most groups: one symbol, no Counter needed
        base_name, new_name = base.names[0], new.names[0]
        if name_shape(base_name) != name_shape(new_name) and canonical_name(
            base_name
        ) == canonical_name(new_name):
            return ChangeClass.RENAMED
        return _by_size(base, new)
    if Counter(name_shape(name) for name in base.names) != Counter(
        name_shape(name) for name in new.names
    ) and Counter(canonical_name(name) for name in base.names) == Counter(
        canonical_name(name) for name in new.names
    ):
        return ChangeClass.RENAMED
    return _by_size(base, new)


def _by_size(base: SymbolGroup, new: SymbolGroup) -> ChangeClass:
    if new.size > base.size:
        return ChangeClass.GROWN
    if new.size < base.size:
        return ChangeClass.SHRUNK
    return ChangeClass.UNCHANGED
