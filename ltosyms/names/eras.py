"""The naming eras of LTO kernels, as data: what name an oops prints for an ELF symbol.

``kernel/kallsyms.c`` ``cleanup_symbol_name()`` shortens clang-LTO names before printing them,
and the rule changed several times. Each row of :data:`CLEANUP_RULES` is one era: the
kernel commit that made it, the mainline and stable versions whose clang-LTO builds print that
way, and what it does to a name. The commits and versions were checked against the kernel's
own history (the commits, their stable review posts and the stable queues):

* up to 5.12: no cleanup; gcc builds of every version print the ELF name too;
* 5.13: 8b8e6b5d3b01 "kallsyms: strip ThinLTO hashes from static functions": with
  ``CONFIG_CFI_CLANG`` and ThinLTO, ``strrchr(s, '$')`` cuts clang's ``foo$<hash>``;
* 5.16: 6eb4bd92c1ce "kallsyms: strip LTO suffixes from static functions" (kees
  for-next/hardening on 2021-10-04, after 5.15-rc4; no stable backport found): ``strchr(s,
  '.')`` cuts everything from the first dot (``.llvm.N``, full LTO's ``.N``, ``.cold``), and
  clang < 13 with CFI still cuts ``$``; dfb352ab1162 "kallsyms: Drop CONFIG_CFI_CLANG
  workarounds" (6.1, kCFI) removed the ``$`` branch;
* 6.5: 8cc32a9bbf29 "kallsyms: strip LTO-only suffixes from promoted global functions":
  ``strstr(s, ".llvm.")``; in stable as 9d95201b2b2a (6.1.42) and 03b3768bd1af (6.4.7);
* 6.11: fb6a421fb615 "kallsyms: Match symbols exactly with CONFIG_LTO_CLANG" and 020925ce9299
  "kallsyms: Do not cleanup .llvm.<hash> suffix before sorting symbols" remove the cleanup;
  in stable 6.10.7 (6.10-stable review of 2024-08-27).

gcc LTO never reached mainline. The out-of-tree series of the 3.x era (Andi Kleen, 2012-2014)
filtered gcc's numeric ``.NNNNN`` postfixes of promoted statics out in kallsyms; the 2022
series (Kleen, Liska, Slaby) prints the full name, ``.lto_priv.N`` included.

A printed name is matched against the names of every era (:func:`rules_in_order`): the
version puts the build's own era first, it never rules the others out.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

Version = tuple[int, int, int]
_LAST_SUBLEVEL = 10_000  # "every stable release of this x.y"


class CleanupKind(enum.Enum):
    NONE = "none"
    CFI_HASH = "cfi-hash"
    FIRST_DOT = "first-dot"
    LLVM_SUFFIX = "llvm-suffix"
    GCC_LTO_NUMERIC = "gcc-lto-numeric"


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionRange:
    """Kernel versions ``first`` to ``last`` (inclusive; ``last`` None: every later one)."""

    first: Version
    last: Version | None

    def __contains__(self, version: object) -> bool:
        return isinstance(version, tuple) and (
            self.first <= version and (self.last is None or version <= self.last)
        )

    def __str__(self) -> str:
        first = ".".join(map(str, self.first))
        if self.last is None:
            return f"{first}+"
        last = ".".join(map(str, self.last)).replace(f".{_LAST_SUBLEVEL}", ".y")
        return first if last == first else f"{first} - {last}"


def _range(first: str, last: str | None) -> VersionRange:
    def version(text: str) -> Version:
        major, minor, sublevel = [*text.replace("y", str(_LAST_SUBLEVEL)).split("."), "0"][:3]
        return int(major), int(minor), int(sublevel)

    return VersionRange(first=version(first), last=None if last is None else version(last))


@dataclass(frozen=True, slots=True, kw_only=True)
class CleanupRule:
    """One era of kernel/kallsyms.c cleanup_symbol_name()."""

    name: str
    kind: CleanupKind
    applies_to: str  # which kernels/compilers, for people
    origin: str  # the code and the commit, for people
    commits: tuple[str, ...]  # kernel commits that made (or backported) the era
    # Kernel versions whose clang-LTO builds print names this way, mainline and stable.
    clang_lto_versions: tuple[VersionRange, ...]


CLEANUP_RULES: tuple[CleanupRule, ...] = (
    CleanupRule(
        name="none",
        kind=CleanupKind.NONE,
        applies_to="gcc builds of any version; clang LTO up to 5.15 without CFI, 6.10.7+ and 6.11+",
        origin="kernel/kallsyms.c: no cleanup_symbol_name() before 5.13; it returns early without "
        "CONFIG_LTO_CLANG (5.16-6.10); removed by fb6a421fb615 'kallsyms: Match symbols "
        "exactly with CONFIG_LTO_CLANG' and 020925ce9299 (6.11, stable 6.10.7)",
        commits=("fb6a421fb615", "020925ce9299"),
        clang_lto_versions=(
            _range("0.0", "5.15.y"),
            _range("6.10.7", "6.10.y"),
            _range("6.11", None),
        ),
    ),
    CleanupRule(
        name="gcc-lto-numeric",
        kind=CleanupKind.GCC_LTO_NUMERIC,
        applies_to="out-of-tree gcc LTO patch sets of the 3.x era (numeric .NNNNN promotions "
        "stripped)",
        origin="gcc LTO kernels of Andi Kleen's 2012-2014 series printed promoted statics without "
        "their numeric '.NNNNN' postfix (filtered in kallsyms); never merged upstream",
        commits=(),
        clang_lto_versions=(),
    ),
    CleanupRule(
        name="cfi-hash",
        kind=CleanupKind.CFI_HASH,
        applies_to="clang ThinLTO with CFI, 5.13 - 5.15 (and clang < 13 up to 6.0, after the "
        "first-dot cut)",
        origin="kernel/kallsyms.c 5.13 cleanup_symbol_name(): `res = strrchr(s, '$'); if (res) "
        "*res = '\\0';` (commit 8b8e6b5d3b01 'kallsyms: strip ThinLTO hashes from static "
        "functions'); dropped by dfb352ab1162 (6.1, kCFI)",
        commits=("8b8e6b5d3b01", "dfb352ab1162"),
        clang_lto_versions=(_range("5.13", "5.15.y"),),
    ),
    CleanupRule(
        name="first-dot",
        kind=CleanupKind.FIRST_DOT,
        applies_to="clang LTO, 5.16 - 6.1.41 and 6.2 - 6.4.6",
        origin="kernel/kallsyms.c 5.16 cleanup_symbol_name(): `res = strchr(s, '.'); if (res) "
        "*res = '\\0';` (commit 6eb4bd92c1ce 'kallsyms: strip LTO suffixes from static "
        "functions')",
        commits=("6eb4bd92c1ce",),
        clang_lto_versions=(_range("5.16", "6.1.41"), _range("6.2", "6.4.6")),
    ),
    CleanupRule(
        name="llvm-suffix",
        kind=CleanupKind.LLVM_SUFFIX,
        applies_to="clang LTO, 6.1.42+ and 6.4.7+ (stable backports) and 6.5 - 6.10.6",
        origin='kernel/kallsyms.c 6.5 cleanup_symbol_name(): `res = strstr(s, ".llvm."); if (res) '
        "*res = '\\0';` (commit 8cc32a9bbf29 'kallsyms: strip LTO-only suffixes from promoted "
        "global functions'; stable 9d95201b2b2a in 6.1.42, 03b3768bd1af in 6.4.7)",
        commits=("8cc32a9bbf29", "9d95201b2b2a", "03b3768bd1af"),
        clang_lto_versions=(
            _range("6.1.42", "6.1.y"),
            _range("6.4.7", "6.4.y"),
            _range("6.5", "6.10.6"),
        ),
    ),
)
CLEANUP_BY_NAME = {rule.name: rule for rule in CLEANUP_RULES}

_GCC_LTO_NUMERIC = re.compile(r"\.\d+$")


def printed_name(elf_name: str, rule: CleanupRule) -> str:
    """The name an oops prints for ``elf_name`` under ``rule``."""
    kind = rule.kind
    if kind is CleanupKind.NONE:
        return elf_name
    if kind is CleanupKind.FIRST_DOT:
        # strchr(s, '.') from the first byte: a compiler-made `.str.1.llvm.N` prints as ""
        dot = elf_name.find(".")
        return elf_name if dot < 0 else elf_name[:dot]
    if kind is CleanupKind.LLVM_SUFFIX:
        cut = elf_name.find(".llvm.")
        return elf_name if cut < 0 else elf_name[:cut]
    if kind is CleanupKind.CFI_HASH:
        cut = elf_name.rfind("$")
        return elf_name if cut < 0 else elf_name[:cut]
    return _GCC_LTO_NUMERIC.sub("", elf_name)


def parse_kernel_version(banner: str) -> Version | None:
    """``(6, 1, 192)`` from a ``Linux version 6.1.0-57-cloud-amd64 ... 6.1.192-3`` banner.

    Distro release strings (6.1.0-57) hide the stable sublevel; the package version at the
    end of Debian's banner has it, so the highest x.y.z with the release's x.y wins.
    """
    match = re.search(r"Linux version (\d+)\.(\d+)(?:\.(\d+))?", banner)
    if not match:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    sublevel = int(match.group(3) or 0)
    for other in re.finditer(rf"\b{major}\.{minor}\.(\d+)\b", banner):
        sublevel = max(sublevel, int(other.group(1)))
    return major, minor, sublevel


def cleanup_rule_for(version: Version | None, clang_lto: bool) -> CleanupRule:
    """The era a kernel version's build prints names in: the first row of
    :data:`CLEANUP_RULES` whose versions hold ``version`` (clang LTO only; every other build,
    and a build of unknown version, prints the ELF name). 5.13-5.15 clang LTO is ``none``:
    only a CFI build cuts ``$``, which the build facts do not tell."""
    if not clang_lto or version is None:
        return CLEANUP_BY_NAME["none"]
    for rule in CLEANUP_RULES:
        if any(version in versions for versions in rule.clang_lto_versions):
            return rule
    return CLEANUP_BY_NAME["none"]


def rules_in_order(own: CleanupRule) -> tuple[CleanupRule, ...]:
    """Every era, the build's ``own`` first: a log may come from a stable backport or carry
    no version at all, so the version orders the eras and excludes none."""
    return (own, *(rule for rule in CLEANUP_RULES if rule is not own))


def candidates_for_printed(printed: str, elf_names: Sequence[str], rule: CleanupRule) -> list[str]:
    """ELF names that print as ``printed`` under ``rule`` (exact name first)."""
    exact = [n for n in elf_names if n == printed]
    return exact + [n for n in elf_names if n != printed and printed_name(n, rule) == printed]
