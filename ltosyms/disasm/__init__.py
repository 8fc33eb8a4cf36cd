"""Kernel machine code: call sites of return addresses, ``Code:`` listings and comparisons.

The package is the only importer of capstone (in :mod:`ltosyms.disasm.decoder`); it returns
records, never text (:mod:`ltosyms.render.code_listing` renders listings).

* :func:`call_ending_at` / :class:`CallSiteFinder` -- the instruction ending at a return
  address (:mod:`.callsite`);
* :func:`disassemble_code` -- an oops ``Code:`` line as instructions, the faulting one marked
  (:mod:`.listing`);
* :func:`compare_code` / :func:`image_window` -- whether the ``Code:`` bytes are the image's,
  boot-time patching excepted (:mod:`.compare`), with the image's patch-site tables from
  :mod:`.patching`;
* :func:`name_call` -- a call site and its target named (``call lkdtm_do_action``,
  :mod:`.targets`);
* :func:`code_view` / :func:`image_code_view` -- a listing labelled, targets named, padding
  and cut instructions told apart, or the image's own when the kernel printed no bytes
  (:mod:`.code_view`, records in :mod:`.view`);
* the records all of these answer with (:mod:`.records`).
"""

from typing import TYPE_CHECKING

from ltosyms.disasm.decoder import AARCH64, RETPOLINE_THUNK_PREFIXES, X86_64, normalize_arch
from ltosyms.disasm.records import (
    CallKind,
    CallSite,
    CodeAnalysis,
    CodeAnalysisKey,
    CodeInstruction,
    CodeListing,
    CodeMatch,
    CodeMatchKey,
    CodeReport,
    CodeVerdict,
    NoCallSite,
    PatchedSite,
    PatchReason,
    SweepMethod,
)
from ltosyms.disasm.targets import CallTarget, CodePoint, NamedCall, TargetKind, name_call
from ltosyms.disasm.view import CodeRow, CodeView, RowKind, ViewSource
from ltosyms.lazy import lazy_exports

if TYPE_CHECKING:
    from ltosyms.disasm.callsite import (
        BytesSource,
        CallSiteFinder,
        CodeSource,
        Sweep,
        call_ending_at,
        finder_for,
    )
    from ltosyms.disasm.code_view import code_view, image_code_view
    from ltosyms.disasm.compare import ImageWindow, PatchedRange, compare_code, image_window
    from ltosyms.disasm.listing import code_bytes_from_words, disassemble_code
    from ltosyms.disasm.patching import PatchSite, PatchSites, Replacement, patch_sites

# The call-site finder, the comparison rules, the listing decoder and the patch-site tables
# load on first use (PEP 562): a decode served from the index needs none of them.
_LAZY = {
    "BytesSource": "ltosyms.disasm.callsite",
    "CallSiteFinder": "ltosyms.disasm.callsite",
    "CodeSource": "ltosyms.disasm.callsite",
    "Sweep": "ltosyms.disasm.callsite",
    "call_ending_at": "ltosyms.disasm.callsite",
    "finder_for": "ltosyms.disasm.callsite",
    "code_view": "ltosyms.disasm.code_view",
    "image_code_view": "ltosyms.disasm.code_view",
    "ImageWindow": "ltosyms.disasm.compare",
    "PatchedRange": "ltosyms.disasm.compare",
    "compare_code": "ltosyms.disasm.compare",
    "image_window": "ltosyms.disasm.compare",
    "code_bytes_from_words": "ltosyms.disasm.listing",
    "disassemble_code": "ltosyms.disasm.listing",
    "PatchSite": "ltosyms.disasm.patching",
    "PatchSites": "ltosyms.disasm.patching",
    "Replacement": "ltosyms.disasm.patching",
    "patch_sites": "ltosyms.disasm.patching",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "AARCH64",
    "RETPOLINE_THUNK_PREFIXES",
    "X86_64",
    "BytesSource",
    "CallKind",
    "CallSite",
    "CallSiteFinder",
    "CallTarget",
    "CodeAnalysis",
    "CodeAnalysisKey",
    "CodeInstruction",
    "CodeListing",
    "CodeMatch",
    "CodeMatchKey",
    "CodePoint",
    "CodeReport",
    "CodeRow",
    "CodeSource",
    "CodeVerdict",
    "CodeView",
    "ImageWindow",
    "NamedCall",
    "NoCallSite",
    "PatchReason",
    "PatchSite",
    "PatchSites",
    "PatchedRange",
    "PatchedSite",
    "Replacement",
    "RowKind",
    "Sweep",
    "SweepMethod",
    "TargetKind",
    "ViewSource",
    "call_ending_at",
    "code_bytes_from_words",
    "code_view",
    "compare_code",
    "disassemble_code",
    "finder_for",
    "image_code_view",
    "image_window",
    "name_call",
    "normalize_arch",
    "patch_sites",
]
