"""``ltosyms parse``: text summary, JSON contract, stdin, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from ltosyms.cli import cli
from ltosyms.oops import iter_reports
from ltosyms.render.parse_json import SCHEMA, frame_to_json, report_to_json


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_json_contract_on_a_real_log(corpus: Any) -> None:
    log = corpus.kernels / "clang-thinlto" / "console.log"
    code, out, err = run("parse", str(log), "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["schema"] == SCHEMA == "ltosyms.parse/1"
    assert document["source"] == str(log)
    reports = document["reports"]
    assert len(reports) == len(list(iter_reports(log.read_bytes())))
    for report in reports:
        assert {"kind", "title", "first_line", "last_line", "code", "traces"} <= set(report)
        for trace in report["traces"]:
            assert "kind" in trace
            for frame in trace["frames"]:
                keys = {"line", "symbol", "offset", "size", "module", "reliable", "exact_ip"}
                assert keys | {"section"} <= set(frame)
                assert frame["section"] in (None, "TASK", "IRQ", "SOFTIRQ", "NMI", "EXCEPTION")
    warning = reports[0]
    assert warning["kind"] == "warning" and warning["crash"] is True
    assert warning["build_id"] == "fbf19241442aad470e2c3f249e81488a10edc9f6"
    header, rip, *entries = warning["traces"][0]["frames"]
    assert (header["symbol"], header["exact_ip"], header["section"]) == (
        "lkdtm_WARNING",
        True,
        None,
    )
    assert (rip["line"], rip["exact_ip"]) == (header["line"] + 3, True)
    assert entries[0]["module_build_id"] == "b6f57dc61cf5f6932874fe02c99a5089fe6d9d19"
    assert all(not e["exact_ip"] and e["section"] == "TASK" for e in entries)
    code_json = warning["code"]
    assert code_json["arch"] == "x86_64" and code_json["marker_offset"] == 42
    assert code_json["bytes"][84:88] == "0f0b"  # "<0f> 0b": ud2


def test_json_is_the_renderer_output(corpus: Any) -> None:
    log = corpus.debian / "logs" / "console-sysrq.log"
    code, out, _ = run("parse", str(log), "--json")
    assert code == 0
    reports = list(iter_reports(log.read_bytes()))
    assert json.loads(out)["reports"] == [report_to_json(r) for r in reports]
    frame = reports[0].traces[0].frames[0]
    assert frame_to_json(frame)["text"] == frame.raw_text


def test_text_summary_from_stdin() -> None:
    log = (
        b"[    1.0] BUG: unable to handle page fault for address: ffffffffc032e330\r\n"
        b"[    1.0] Oops: 0003 [#3] SMP\r\n"
        b"[    1.0] CPU: 1 PID: 182 Comm: sh Not tainted 6.1.192 #1\r\n"
        b"[    1.0] RIP: 0010:lkdtm_WRITE_RO+0x18/0x30 [lkdtm]\r\n"
        b"[    1.0] Call Trace:\r\n"
        b"[    1.0]  <TASK>\r\n"
        b"[    1.0]  ? direct_entry+0x147/0x160 [lkdtm]\r\n"
    )
    code, out, err = run("parse", stdin=log)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "report 1: page_fault (crash), lines 1-7"
    assert "  task: cpu 1, pid 182, comm sh" in lines
    assert any(line.split() == ["7", "ret", "TASK", "?", "direct_entry+0x147/0x160", "[lkdtm]"]
               for line in lines)  # fmt: skip
    assert lines[-1] == "1 reports, 1 of them crashes"
    assert run("parse", "-", stdin=log)[1] == out


def test_log_without_reports_is_not_an_error(tmp_path: Path) -> None:
    log = tmp_path / "boot.log"
    log.write_bytes(b"[    0.000000] Linux version 6.1.0\n")
    assert run("parse", str(log)) == (0, "no reports found\n", "")
    code, out, _ = run("parse", str(log), "--json")
    assert code == 0 and json.loads(out)["reports"] == []


def test_unreadable_log_is_a_one_line_error(tmp_path: Path) -> None:
    code, out, err = run("parse", str(tmp_path / "missing.log"))
    assert code == 2 and out == ""
    assert err.startswith("ltosyms: error: cannot read ") and err.count("\n") == 1
    code, _, err = run("parse", str(tmp_path))
    assert code == 2 and err.count("\n") == 1
