"""The report writes the journal, a verdict document and readable plots, and summarises failures in words."""

import json
from pathlib import Path

from rich.console import Console

from rocketmq_chaos.journal import Fault, Journal, Receive
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


def test_what_a_killed_broker_did_to_a_ladder_is_counted_and_explained(tmp_path: Path) -> None:
    journal = ladder_journal([1000, 2000, 3000], dead_letters=2)
    journal.record(Receive(30.0, "m1", "%RETRY%G", "a", 2, 29.0))  # retry 2 stored again by the restarted master
    verdicts = {"killed": judge_ladder(journal, LADDER, strict=False)}

    killed = json.loads(write_report(tmp_path / "run", journal, verdicts).verdict.read_text())["experiments"]["killed"]
    assert (killed["passed"], killed["lost"], killed["repeated_retries"], killed["extra_dead_letters"]) == (
        True, [], 1, 1)
    assert "rocketmq#2357" in killed["explanations"][0]

    console = Console(record=True, width=400)
    console.print(summary(verdicts))
    text = console.export_text()
    assert "retries stored twice 1, read twice 0, skipped 0, past the limit 0; dead-lettered twice 1" in text
    assert "rocketmq#2357" in text

    calm = Console(record=True, width=400)
    calm.print(summary({"calm": judge_ladder(ladder_journal([1000, 2000, 3000]), LADDER)}))
    assert "stored twice" not in calm.export_text()
