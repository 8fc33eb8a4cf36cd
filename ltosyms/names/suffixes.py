"""The grammar of compiler- and linker-made symbol suffixes.

A name is a *base* followed by an ordered chain of suffix parts, each of a known kind::

    NF_HOOK.constprop.0.isra.0   -> NF_HOOK  + [constprop ".constprop.0", isra ".isra.0"]
    foo.part.0.cold              -> foo      + [part ".part.0", cold ".cold"]
    try_to_wake_up.llvm.14717294184349261171 -> try_to_wake_up + [llvm ...]
    set_track_update.argelim.argprom -> set_track_update + [argelim, argprom]

The base is the *shortest* prefix (cut at a dot) whose remainder parses completely as a suffix
chain. A chain starts with a known part; after one, an unknown ``.word`` is kept as an
*opaque* part (a suffix some newer compiler pass adds), so ``foo.cold.newpass`` is still
``foo`` with parts. A dotted tail that does not start with a known part stays in the base:
gcc LTO's weak ``head64.c.552cf5a6`` and clang's function-local static ``idt_invalidate.idt``
(``idt_invalidate.idt.llvm.N`` once promoted) are bases of their own, not functions with odd
suffixes. ``render()`` gives the original name back, byte for byte.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache


class SuffixKind(enum.Enum):
    """Who made the suffix and what it means."""

    CONSTPROP = "constprop"  # gcc IPA-CP clone
    ISRA = "isra"  # gcc IPA-SRA clone
    PART = "part"  # gcc partial inlining: outlined part
    COLD = "cold"  # gcc hot/cold split
    LOCALALIAS = "localalias"  # gcc local alias of a global
    LTO_PRIV = "lto_priv"  # gcc LTO promoted static
    NUMERIC = "numeric"  # old gcc LTO promotion, or a function-local static object
    LLVM = "llvm"  # clang ThinLTO promoted local: .llvm.<module hash> or, with
    # -use-source-filename-for-promoted-locals, .llvm.<source path with _> (number None)
    SPECIALIZED = "specialized"  # LLVM function specialization
    # llvm-project PR 105742 (2024, re-landed as PR 109899): passes that change a signature
    # rename the function, e.g. set_track_update.argelim.argprom
    ARGELIM = "argelim"  # LLVM dead argument elimination: an argument removed
    RETELIM = "retelim"  # LLVM dead argument elimination: the return value removed
    ARGPROM = "argprom"  # LLVM argument promotion: a pointer argument passed by value
    UNIQ = "uniq"  # clang -funique-internal-linkage-names
    CFI = "cfi"  # clang CFI (5.13-6.0) canonical function
    CFI_JT = "cfi_jt"  # clang CFI jump-table entry
    OPAQUE = "opaque"  # an unknown .word after a known part: kept, meaning unknown

    @property
    def is_clone(self) -> bool:
        """Parts that mark a specialized or split copy of the original function's code."""
        return self in _CLONE_KINDS

    @property
    def is_promotion(self) -> bool:
        """Parts that only rename (a static made visible across LTO partitions/modules)."""
        return self in _PROMOTION_KINDS


_CLONE_KINDS = frozenset(
    {
        SuffixKind.CONSTPROP,
        SuffixKind.ISRA,
        SuffixKind.PART,
        SuffixKind.COLD,
        SuffixKind.SPECIALIZED,
        SuffixKind.ARGELIM,
        SuffixKind.RETELIM,
        SuffixKind.ARGPROM,
    }
)
_PROMOTION_KINDS = frozenset(
    {
        SuffixKind.LTO_PRIV,
        SuffixKind.NUMERIC,
        SuffixKind.LLVM,
        SuffixKind.UNIQ,
        SuffixKind.LOCALALIAS,
        SuffixKind.CFI,
        SuffixKind.CFI_JT,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suffix:
    """One compiler or LTO suffix of a symbol name (``.constprop.0``, ``.llvm.<hash>``)."""

    kind: SuffixKind
    text: str  # exactly as in the name, leading dot included: ".constprop.0"
    number: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolName:
    """A symbol name split into its base and its suffixes, in the order they were added."""

    raw: str
    base: str
    suffixes: tuple[Suffix, ...] = ()

    def render(self) -> str:
        return self.base + "".join(part.text for part in self.suffixes)

    @property
    def kinds(self) -> tuple[SuffixKind, ...]:
        return tuple(part.kind for part in self.suffixes)

    def has(self, kind: SuffixKind) -> bool:
        return any(part.kind is kind for part in self.suffixes)

    @property
    def is_clone(self) -> bool:
        return any(part.kind.is_clone for part in self.suffixes)

    @property
    def is_promoted(self) -> bool:
        return bool(self.suffixes) and all(part.kind.is_promotion for part in self.suffixes)

    def without(self, *kinds: SuffixKind) -> str:
        """The name with every part of the given kinds removed (others kept, in order)."""
        return self.base + "".join(p.text for p in self.suffixes if p.kind not in kinds)


# One part of the chain: a keyword with its number where the compiler always adds one.
# Order matters only for readability; every alternative is anchored by the following dot/end.
_PART = re.compile(
    r"""\.(?:
        (?P<constprop>constprop)\.(?P<constprop_n>\d+)
      | (?P<isra>isra)\.(?P<isra_n>\d+)
      | (?P<part>part)\.(?P<part_n>\d+)
      | (?P<cold>cold)(?:\.(?P<cold_n>\d+))?
      | (?P<localalias>localalias)(?:\.(?P<localalias_n>\d+))?
      | (?P<lto_priv>lto_priv)\.(?P<lto_priv_n>\d+)
      | (?P<llvm>llvm)\.(?P<llvm_n>\d+|[A-Za-z0-9]*_[A-Za-z0-9_]*)  # path: a_b_c
      | (?P<specialized>specialized)\.(?P<specialized_n>\d+)
      | (?P<argelim>argelim)
      | (?P<retelim>retelim)
      | (?P<argprom>argprom)
      | (?P<uniq>__uniq)\.(?P<uniq_n>\d+)
      | (?P<cfi_jt>cfi_jt)
      | (?P<cfi>cfi)
      | (?P<numeric>\d+)
    )(?=\.|$)""",
    re.VERBOSE,
)
_KIND_BY_GROUP = {
    "constprop": SuffixKind.CONSTPROP,
    "isra": SuffixKind.ISRA,
    "part": SuffixKind.PART,
    "cold": SuffixKind.COLD,
    "localalias": SuffixKind.LOCALALIAS,
    "lto_priv": SuffixKind.LTO_PRIV,
    "llvm": SuffixKind.LLVM,
    "specialized": SuffixKind.SPECIALIZED,
    "argelim": SuffixKind.ARGELIM,
    "retelim": SuffixKind.RETELIM,
    "argprom": SuffixKind.ARGPROM,
    "uniq": SuffixKind.UNIQ,
    "cfi_jt": SuffixKind.CFI_JT,
    "cfi": SuffixKind.CFI,
    "numeric": SuffixKind.NUMERIC,
}


# An unknown part: one dotted word (letters, digits, underscores).
_OPAQUE = re.compile(r"\.[A-Za-z0-9_]+(?=\.|$)")


def _parse_chain(tail: str) -> tuple[Suffix, ...] | None:
    """Parse ``tail`` (starting with a dot) completely as a suffix chain, or None."""
    parts: list[Suffix] = []
    position = 0
    while position < len(tail):
        match = _PART.match(tail, position)
        if match is None:
            opaque = _OPAQUE.match(tail, position) if parts else None
            if opaque is None:
                return None
            parts.append(Suffix(kind=SuffixKind.OPAQUE, text=opaque.group(0)))
            position = opaque.end()
            continue
        group = match.lastgroup
        # lastgroup names the last group that matched; the keyword group precedes its number.
        keyword = group[:-2] if group and group.endswith("_n") else group
        assert keyword is not None
        kind = _KIND_BY_GROUP[keyword]
        number_text = match.group(keyword + "_n") if keyword + "_n" in _PART.groupindex else None
        if kind is SuffixKind.NUMERIC:
            number_text = match.group("numeric")
        number = int(number_text) if number_text and number_text.isdigit() else None
        parts.append(Suffix(kind=kind, text=match.group(0), number=number))
        position = match.end()
    return tuple(parts)


@lru_cache(maxsize=65536)
def parse_name(name: str) -> SymbolName:
    """Split a symbol name into its base and suffix chain (see module docstring)."""
    dot = name.find(".", 1)  # a leading dot (".L...", ".text") belongs to the base
    while dot > 0:
        chain = _parse_chain(name[dot:])
        if chain is not None:
            return SymbolName(raw=name, base=name[:dot], suffixes=chain)
        dot = name.find(".", dot + 1)
    return SymbolName(raw=name, base=name, suffixes=())
