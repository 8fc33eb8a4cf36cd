"""Decoding: parsed oops reports x kernel images -> resolved frames with source locations.

:class:`Decoder` is the pipeline (parse -> resolve -> KASLR -> narrowing -> ``Code:``); the
images it decodes against are :class:`~ltosyms.context.ImageContext`\\ s a
:class:`~ltosyms.context.Session` opens.
"""

from ltosyms.decode.decode import DecodedFrame, DecodedReport, DecodedTrace, Decoder
from ltosyms.decode.frames import FrameQuery, ResolvedFrame

__all__ = [
    "DecodedFrame",
    "DecodedReport",
    "DecodedTrace",
    "Decoder",
    "FrameQuery",
    "ResolvedFrame",
]
