"""Kernel oops and stack-trace parsing: console text in, :class:`Report` records out.

The parser never opens an ELF file; decoding against a vmlinux builds on its records.
"""

from ltosyms.oops.parse import LogStretch, OopsParser, iter_log_stretches, iter_reports, parse_text
from ltosyms.oops.records import (
    CodeBytes,
    Frame,
    FrameRole,
    IpLine,
    RegisterDump,
    Report,
    ReportKind,
    SourceAnnotation,
    StackSection,
    Trace,
)

__all__ = [
    "CodeBytes",
    "Frame",
    "FrameRole",
    "IpLine",
    "LogStretch",
    "OopsParser",
    "RegisterDump",
    "Report",
    "ReportKind",
    "SourceAnnotation",
    "StackSection",
    "Trace",
    "iter_log_stretches",
    "iter_reports",
    "parse_text",
]
