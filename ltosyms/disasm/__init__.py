"""Kernel machine code: call sites of return addresses, ``Code:`` listings and comparisons.

The package is the only importer of capstone (in :mod:`ltosyms.disasm.decoder`); it returns
records, never text (:mod:`ltosyms.render.code_listing` renders listings).

* :func:`call_ending_at` / :class:`CallSiteFinder` -- the instruction ending at a return
  address (:mod:`.callsite`);
* :func:`disassemble_code` -- an oops ``Code:`` line as instructions, the faulting one marked
  (:mod:`.listing`);
* :func:`compare_code` / :func:`image_window` -- whether the ``Code:`` bytes are the image's,
  boot-time patching excepted (:mod:`.compare`), with the image's patch-site tables from
  :mod:`.patching`.
"""

from ltosyms.disasm.callsite import (
    RETPOLINE_THUNK_PREFIXES,
    BytesSource,
    CallKind,
    CallSite,
    CallSiteFinder,
    CallSiteStore,
    CodeSource,
    SweepMethod,
    call_ending_at,
    finder_for,
)
from ltosyms.disasm.compare import (
    MATCH_KIND,
    CodeMatch,
    CodeVerdict,
    ImageWindow,
    PatchedRange,
    PatchedSite,
    compare_code,
    image_window,
    match_from_bytes,
    match_key,
    match_to_bytes,
)
from ltosyms.disasm.decoder import AARCH64, X86_64, normalize_arch
from ltosyms.disasm.listing import (
    LISTING_KIND,
    CodeInstruction,
    CodeListing,
    code_bytes_from_words,
    disassemble_code,
    listing_from_bytes,
    listing_key,
    listing_to_bytes,
)
from ltosyms.disasm.patching import PatchReason, PatchSite, PatchSites, Replacement, patch_sites

__all__ = [
    "AARCH64",
    "LISTING_KIND",
    "MATCH_KIND",
    "RETPOLINE_THUNK_PREFIXES",
    "X86_64",
    "BytesSource",
    "CallKind",
    "CallSite",
    "CallSiteFinder",
    "CallSiteStore",
    "CodeInstruction",
    "CodeListing",
    "CodeMatch",
    "CodeSource",
    "CodeVerdict",
    "ImageWindow",
    "PatchReason",
    "PatchSite",
    "PatchSites",
    "PatchedRange",
    "PatchedSite",
    "Replacement",
    "SweepMethod",
    "call_ending_at",
    "code_bytes_from_words",
    "compare_code",
    "disassemble_code",
    "finder_for",
    "image_window",
    "listing_from_bytes",
    "listing_key",
    "listing_to_bytes",
    "match_from_bytes",
    "match_key",
    "match_to_bytes",
    "normalize_arch",
    "patch_sites",
]
