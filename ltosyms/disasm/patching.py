"""Where the kernel rewrites its own code at boot, read from the vmlinux's site tables.

The bytes of a running kernel differ from its vmlinux wherever boot code patches them
(arch/x86/kernel/alternative.c ``alternative_instructions``, 6.1):

* ``.altinstructions``: ``ALTERNATIVE()`` sites, replaced by a CPU-feature dependent sequence
  from ``.altinstr_replacement`` (``apply_alternatives``; arm64 has the same table,
  arch/arm64/kernel/alternative.c). A ``call`` in a replacement is re-aimed so it reaches the
  same absolute target: a return address may lie after such a call although the vmlinux has
  NOPs there (Debian 6.1 ``read_zero+0x5d``: ``rep stosb`` in the vmlinux, ``call
  clear_user_erms`` at run time).
* ``.parainstructions``: paravirt ``call *pv_ops+N(%rip)`` sites, rewritten into a 5-byte
  direct call plus NOPs (``apply_paravirt``); the return address is then site + 5, inside the
  vmlinux's 6- or 7-byte indirect call.
* ``.retpoline_sites``: ``call/jmp __x86_indirect_thunk_<reg>``, rewritten into ``call *%reg``
  plus NOPs when retpolines are off (``patch_retpoline``, 5.16+).
* ``.return_sites``: ``jmp __x86_return_thunk``, rewritten into ``ret; int3...``
  (``patch_return``, 5.19+).

Modules carry the same tables, but as relocations against a zero-filled ``.ko``: their sites
cannot be read without applying relocations, so a module has no tables here and the callers
fall back on instruction-level rules.
"""

from __future__ import annotations

import bisect
import logging
import struct
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from ltosyms.disasm.records import PatchReason
from ltosyms.elf.image import KernelImage
from ltosyms.stores import Memo, remembered

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Replacement:
    """One alternative sequence for a site: its bytes and where they sit in the image."""

    link_address: int
    data: bytes


@dataclass(frozen=True, slots=True)
class PatchSite:
    link_address: int
    length: int
    reason: PatchReason
    replacements: tuple[Replacement, ...] = ()

    @property
    def end_address(self) -> int:
        return self.link_address + self.length


# struct alt_instr layouts, detected by stride and checked entry by entry (the stride alone
# is ambiguous). Fields: instr_offset, repl_offset (each relative to itself), feature, then
# instrlen and replacementlen.
_ALT_LAYOUTS = (
    # x86 5.13-6.2 (u16 cpuid); arm64 (u16 cpufeature; orig_len, alt_len) since 4.x
    ("iiHBB", 12),
    # x86 6.3+: u32 ft_flags (arch/x86/include/asm/alternative.h)
    ("iiIBB", 14),
    # x86 before 5.13: trailing u8 padlen (removed by "x86/alternatives: Optimize
    # optimize_nops()")
    ("iiHBBx", 13),
)
# struct paravirt_patch_site { u8 *instr; u8 type; u8 len; } padded to 16 bytes on x86-64
# (arch/x86/include/asm/paravirt_types.h, up to 6.7; older kernels add u16 clobbers).
_PARAVIRT_LAYOUT = ("QBB6x", 16)
# Retpoline and return sites: the instruction is a rel32 jump/call; Jcc.d32 (0f 8x) and a
# cs-prefixed call are one byte longer.
_THUNK_SITE_LENGTH = 5
_LONG_FORMS = (0x0F, 0x2E)
# Longest patch site, to bound the backward search of a lookup.
_MAX_SITE = 256


# Reason codes of the stored tables (only table-backed reasons occur there).
_REASON_CODES = {
    PatchReason.ALTERNATIVE: 0,
    PatchReason.PARAVIRT: 1,
    PatchReason.RETPOLINE: 2,
    PatchReason.RETURN_THUNK: 3,
}
_REASONS_BY_CODE = {code: reason for reason, code in _REASON_CODES.items()}


@dataclass(frozen=True, slots=True)
class PatchColumns:
    """The patch sites of one image as the columns :class:`PatchSites` keeps (what the index
    stores of them): sites by address, their replacements, and the thunk sites apart."""

    available: bool  # the image has tables we could read
    starts: Sequence[int]
    lengths: Sequence[int]
    reason_codes: Sequence[int]  # one byte each (see _REASON_CODES)
    first_replacement: Sequence[int]  # one more entry than sites
    replacement_addresses: Sequence[int]
    replacement_ends: Sequence[int]  # end offset of each replacement in replacement_bytes
    replacement_bytes: bytes
    thunk_starts: Sequence[int]
    thunk_reason_codes: Sequence[int]


class PatchSites:
    """The patch sites of one image, sorted by address; empty for images without tables.

    Kept as columns, records made when a lookup hits them: a distro vmlinux has ~60,000 sites
    and a decode looks at a handful. Columns are lists when read from the image and packed
    arrays when loaded from the index."""

    _starts: Sequence[int]
    _lengths: Sequence[int]
    _reason_codes: Sequence[int]  # _REASON_CODES values
    _first_replacement: Sequence[int]
    _replacement_addresses: Sequence[int]
    _replacement_ends: Sequence[int]
    _thunk_starts: Sequence[int]
    _thunk_reason_codes: Sequence[int]

    def __init__(self, image: KernelImage | None = None) -> None:
        self._image = image
        self.available = False
        sites: list[PatchSite] = []
        # Thunk sites are many (48,000 return sites in Debian 6.1) and all alike: kept as
        # sorted starts, made into records only when a lookup hits them.
        thunks: list[tuple[int, PatchReason]] = []
        if image is not None and not image.is_module:
            sites = self._alternatives(image) + self._paravirt(image)
            thunks = self._thunk_sites(image)
        sites.sort(key=lambda site: (site.link_address, site.reason.value))
        thunks.sort(key=lambda thunk: thunk[0])
        self._starts = [site.link_address for site in sites]
        self._lengths = [site.length for site in sites]
        self._reason_codes = bytes(_REASON_CODES[site.reason] for site in sites)
        # Replacements of site i: positions _first_replacement[i] .. [i + 1] of the columns.
        first_replacement = [0]
        addresses: list[int] = []
        ends: list[int] = []  # end offsets of each one's bytes in the blob
        blob = bytearray()
        for site in sites:
            for replacement in site.replacements:
                addresses.append(replacement.link_address)
                blob += replacement.data
                ends.append(len(blob))
            first_replacement.append(len(addresses))
        self._first_replacement = first_replacement
        self._replacement_addresses = addresses
        self._replacement_ends = ends
        self._replacement_bytes = bytes(blob)
        self._records: dict[int, PatchSite] = {}
        self._thunk_starts = [start for start, _reason in thunks]
        self._thunk_reason_codes = bytes(_REASON_CODES[reason] for _start, reason in thunks)

    def __len__(self) -> int:
        return len(self._starts) + len(self._thunk_starts)

    def _site(self, position: int) -> PatchSite:
        site = self._records.get(position)
        if site is None:
            first, last = self._first_replacement[position : position + 2]
            ends = self._replacement_ends
            replacements = tuple(
                Replacement(
                    self._replacement_addresses[number],
                    self._replacement_bytes[ends[number - 1] if number else 0 : ends[number]],
                )
                for number in range(first, last)
            )
            site = self._records[position] = PatchSite(
                self._starts[position],
                self._lengths[position],
                _REASONS_BY_CODE[self._reason_codes[position]],
                replacements,
            )
        return site

    # -- columns ---------------------------------------------------------------------------------

    def columns(self) -> PatchColumns:
        return PatchColumns(
            available=self.available,
            starts=self._starts,
            lengths=self._lengths,
            reason_codes=self._reason_codes,
            first_replacement=self._first_replacement,
            replacement_addresses=self._replacement_addresses,
            replacement_ends=self._replacement_ends,
            replacement_bytes=self._replacement_bytes,
            thunk_starts=self._thunk_starts,
            thunk_reason_codes=self._thunk_reason_codes,
        )

    @classmethod
    def from_columns(cls, image: KernelImage, columns: PatchColumns) -> PatchSites:
        """The sites of ``image`` whose columns :meth:`columns` gave; :class:`ValueError` when
        they do not fit together."""
        sites = len(columns.starts)
        if (
            len(columns.lengths) != sites
            or len(columns.reason_codes) != sites
            or len(columns.first_replacement) != sites + 1
            or len(columns.replacement_ends) != len(columns.replacement_addresses)
            or len(columns.thunk_starts) != len(columns.thunk_reason_codes)
            # Codes are 0 .. len - 1 (see _REASON_CODES).
            or max(columns.reason_codes, default=0) >= len(_REASONS_BY_CODE)
            or max(columns.thunk_reason_codes, default=0) >= len(_REASONS_BY_CODE)
        ):
            raise ValueError("patch site columns differ in length or name unknown reasons")
        table = cls()
        table._image = image
        table.available = columns.available
        table._starts = columns.starts
        table._lengths = columns.lengths
        table._reason_codes = columns.reason_codes
        table._first_replacement = columns.first_replacement
        table._replacement_addresses = columns.replacement_addresses
        table._replacement_ends = columns.replacement_ends
        table._replacement_bytes = columns.replacement_bytes
        table._thunk_starts = columns.thunk_starts
        table._thunk_reason_codes = columns.thunk_reason_codes
        return table

    def covering(self, link_address: int) -> list[PatchSite]:
        """Sites whose bytes include ``link_address``."""
        return self.overlapping(link_address, link_address + 1)

    def overlapping(self, start: int, end: int) -> list[PatchSite]:
        """Sites with at least one byte in [start, end), by address."""
        low = bisect.bisect_left(self._starts, start - _MAX_SITE)
        high = bisect.bisect_left(self._starts, end)
        found = [
            self._site(position)
            for position in range(low, high)
            if self._starts[position] + self._lengths[position] > start
        ]
        low = bisect.bisect_left(self._thunk_starts, start - _THUNK_SITE_LENGTH - 1)
        high = bisect.bisect_left(self._thunk_starts, end)
        for position in range(low, high):
            site = self._thunk_site(position)
            if site is not None and site.end_address > start:
                found.append(site)
        found.sort(key=lambda site: site.link_address)
        return found

    def _thunk_site(self, position: int) -> PatchSite | None:
        start = self._thunk_starts[position]
        if self._image is None:
            return None
        first = self._image.read(start, 1)
        length = _THUNK_SITE_LENGTH + (bool(first) and first[0] in _LONG_FORMS)
        return PatchSite(start, length, _REASONS_BY_CODE[self._thunk_reason_codes[position]])

    # -- tables -----------------------------------------------------------------------------------

    @cached_property
    def _endian(self) -> str:
        return "<" if self._image is None or self._image.little_endian else ">"

    def _table(self, image: KernelImage, name: str) -> tuple[int, bytes] | None:
        section = image.get_section(name)
        if section is None or not section.has_bits or not section.size:
            return None
        return section.link_address, image.section_bytes(section)

    def _alternatives(self, image: KernelImage) -> list[PatchSite]:
        table = self._table(image, ".altinstructions")
        if table is None:
            return []
        base, data = table
        for layout, stride in _ALT_LAYOUTS:
            if len(data) % stride:
                continue
            grouped: dict[int, tuple[int, list[Replacement]]] = {}
            valid = True
            for number, entry in enumerate(struct.iter_unpack(self._endian + layout, data)):
                instr_offset, repl_offset, _feature, instr_length, repl_length = entry
                field = base + number * stride
                instr = field + instr_offset
                repl = field + 4 + repl_offset
                if not _is_code(image, instr) or (repl_length and not _is_bytes(image, repl)):
                    valid = False
                    break
                if not instr_length:
                    continue
                length, replacements = grouped.setdefault(instr, (instr_length, []))
                if instr_length > length:
                    grouped[instr] = (instr_length, replacements)
                replacements.append(Replacement(repl, image.read(repl, repl_length)))
            if valid:
                self.available = True
                return [
                    PatchSite(instr, length, PatchReason.ALTERNATIVE, tuple(replacements))
                    for instr, (length, replacements) in grouped.items()
                ]
        log.debug("%s: .altinstructions has no known layout", image.path)
        return []

    def _paravirt(self, image: KernelImage) -> list[PatchSite]:
        table = self._table(image, ".parainstructions")
        if table is None:
            return []
        _base, data = table
        layout, stride = _PARAVIRT_LAYOUT
        if len(data) % stride:
            return []
        sites = []
        for instr, _type, length in struct.iter_unpack(self._endian + layout, data):
            if not _is_code(image, instr) or not length:
                log.debug("%s: .parainstructions has no known layout", image.path)
                return []
            sites.append(PatchSite(instr, length, PatchReason.PARAVIRT))
        self.available = True
        return sites

    def _thunk_sites(self, image: KernelImage) -> list[tuple[int, PatchReason]]:
        sites: list[tuple[int, PatchReason]] = []
        for name, reason in (
            (".retpoline_sites", PatchReason.RETPOLINE),
            (".return_sites", PatchReason.RETURN_THUNK),
        ):
            table = self._table(image, name)
            if table is None or len(table[1]) % 4:
                continue
            base, data = table
            starts = [
                base + 4 * number + offset
                for number, (offset,) in enumerate(struct.iter_unpack(self._endian + "i", data))
            ]
            # Every entry points into text, or the table is not what we think it is.
            if not all(_is_code(image, site) for site in (min(starts), max(starts))):
                log.debug("%s: %s does not point into text", image.path, name)
                continue
            self.available = True
            sites.extend((start, reason) for start in starts)
        return sites


def _is_code(image: KernelImage, link_address: int) -> bool:
    section = image.section_at(link_address)
    return section is not None and section.is_exec


def _is_bytes(image: KernelImage, link_address: int) -> bool:
    return image.section_at(link_address) is not None


_cache: weakref.WeakKeyDictionary[KernelImage, PatchSites] = weakref.WeakKeyDictionary()


def patch_sites(image: KernelImage, memo: Memo[None, PatchSites] | None = None) -> PatchSites:
    """The image's patch sites, read once per open image; with ``memo``, taken from it (or
    kept there once read: the tables of a distro vmlinux take a tenth of a second)."""
    sites = _cache.get(image)
    if sites is None:
        sites = _cache[image] = remembered(memo, None, lambda: PatchSites(image))
    return sites
