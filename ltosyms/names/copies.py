"""What a compiler-made symbol is, in plain words: ``tg_sleep_deep.constprop.0`` is "a copy of
tg_sleep_deep specialized for constant arguments".

gcc and clang name the copies and renamings of a function by suffixes
(:mod:`ltosyms.names.suffixes` parses them); a developer reading a trace wants to know that
``finish_task_switch.isra.0`` is ``finish_task_switch`` with its arguments rewritten, and that
``try_to_wake_up.llvm.14717294184349261171`` is ``try_to_wake_up`` itself under the name
ThinLTO gave the static function when it made it visible to other units.
"""

from __future__ import annotations

from ltosyms.names.suffixes import SuffixKind, parse_name

# gcc: ipa-cp.cc (.constprop), ipa-sra.cc (.isra), ipa-split.cc (.part), the hot/cold
# partitioning of bb-reorder.cc (.cold), lto-partition.cc (.lto_priv); LLVM: the ThinLTO
# promotion of FunctionImportUtils.cpp (.llvm.<hash>), FunctionSpecialization.cpp
# (.specialized), DeadArgumentElimination.cpp (.argelim, .retelim), ArgumentPromotion.cpp
# (.argprom).
_WORDS = {
    SuffixKind.CONSTPROP: "a copy of {base} specialized for constant arguments",
    SuffixKind.ISRA: "a copy of {base} with its arguments rewritten (scalar replacement)",
    SuffixKind.PART: "the outlined part of {base} (partial inlining)",
    SuffixKind.COLD: "the rarely run part of {base}, split off by the compiler",
    SuffixKind.SPECIALIZED: "a copy of {base} specialized for an argument",
    SuffixKind.ARGELIM: "{base} with an unused argument removed",
    SuffixKind.RETELIM: "{base} with its unused return value removed",
    SuffixKind.ARGPROM: "{base} with a pointer argument passed by value",
    SuffixKind.LLVM: "{base} under the unique name clang ThinLTO gives a static function",
    SuffixKind.LTO_PRIV: "{base} under the unique name gcc LTO gives a static function",
}


def copy_description(name: str) -> str | None:
    """What ``name`` is when a compiler made or renamed it, else None. The copy that changes
    the code is named (``.isra.0.cold``: the rarely run part); a renaming alone says so."""
    parsed = parse_name(name)
    known = [kind for kind in parsed.kinds if kind in _WORDS]
    if not known:
        return None
    # The last code-changing suffix says what the code is (`.isra.0.cold` is the cold part of
    # the copy); a promotion only renames it.
    changing = [kind for kind in known if kind.is_clone]
    kind = changing[-1] if changing else known[-1]
    return _WORDS[kind].format(base=parsed.base)
