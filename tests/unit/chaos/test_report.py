"""The report writes the journal, a verdict document and readable plots, and summarises failures in words."""

import json
from pathlib import Path

from rich.console import Console

from rocketmq_chaos.journal import Fault, Journal
from rocketmq_chaos.report import summary, write_report
from rocketmq_chaos.verdicts import judge_delivery, judge_ladder

from .journals import LADDER, delivered, ladder_journal, send

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_a_report_holds_journal_verdict_and_plots(tmp_path: Path) -> None:
    journal = ladder_journal([1000, 2000, 3000])
    for event in (send(1.0, "m1", "a"), send(2.0, "m2", "b", failed=("a",)), Fault(1.5, "kill", "broker-a"),
                  *delivered("m1")):
        journal.record(event)
    verdicts = {"broker-kill": judge_delivery(journal), "ladder": judge_ladder(journal, LADDER)}
    report = write_report(tmp_path / "run", journal, verdicts)

    assert not report.passed  # m2 was acknowledged and never delivered
    document = json.loads(report.verdict.read_text())
    assert document["passed"] is False
    assert document["experiments"]["broker-kill"]["lost"] == ["m2"]
    assert document["experiments"]["ladder"]["passed"] is True
    assert len(Journal.read(report.journal).events) == len(journal.events)
    assert [p.name for p in report.plots] == ["send-latency.png", "ladder-ladder.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.stat().st_size > 5000 for p in report.plots)

    console = Console(record=True, width=200)
    console.print(summary(verdicts))
    text = console.export_text()
    assert "FAIL" in text
    assert "PASS" in text
    assert "1 acknowledged message(s) never arrived, e.g. m2" in text
