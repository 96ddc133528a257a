"""The report of an experiment run: the journal, a JSON verdict, PNG plots and a terminal summary."""

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # not pyplot: no global state, no GUI backend, safe in threads
from rich.table import Table

from .journal import Fault, Journal, Send
from .verdicts import ConsumptionVerdict, DeliveryVerdict, LadderVerdict, OverrunVerdict

Verdict = DeliveryVerdict | LadderVerdict | ConsumptionVerdict | OverrunVerdict


@dataclass(frozen=True)
class Report:
    directory: Path
    journal: Path
    verdict: Path
    plots: tuple[Path, ...]
    passed: bool


def verdict_json(verdicts: Mapping[str, Verdict]) -> dict[str, Any]:
    return {"passed": all(v.passed for v in verdicts.values()),
            "experiments": {name: {"passed": v.passed, **_counts(v), **dataclasses.asdict(v)}
                            for name, v in verdicts.items()}}


def _counts(verdict: Verdict) -> dict[str, Any]:
    """What a verdict derives from its fields, for readers of the JSON: a ladder's totals and their explanations."""
    if not isinstance(verdict, LadderVerdict):
        return {}
    return {"lost": verdict.lost, "repeated_retries": verdict.repeated_retries,
            "reread_retries": verdict.reread_retries, "skipped_retries": verdict.skipped_retries,
            "extra_dead_letters": verdict.extra_dead_letters, "beyond_limit": verdict.beyond_limit,
            "explanations": verdict.explanations}


def write_report(directory: Path, journal: Journal, verdicts: Mapping[str, Verdict]) -> Report:
    directory.mkdir(parents=True, exist_ok=True)
    journal_path, verdict_path = directory / "journal.jsonl", directory / "verdict.json"
    journal.write(journal_path)
    verdict_path.write_text(json.dumps(verdict_json(verdicts), indent=2) + "\n")
    plots = []
    if journal.of(Send):
        plots.append(_plot_latency(journal, directory / "send-latency.png"))
    ladders = {name: v for name, v in verdicts.items() if isinstance(v, LadderVerdict) and v.messages}
    for name, ladder in ladders.items():
        plots.append(_plot_ladder(name, ladder, directory / f"{name}-ladder.png"))
    return Report(directory, journal_path, verdict_path, tuple(plots), all(v.passed for v in verdicts.values()))


def _plot_latency(journal: Journal, path: Path) -> Path:
    sends: list[Send] = sorted(journal.of(Send), key=lambda s: s.t)
    start = sends[0].t
    figure = Figure(figsize=(10, 4))
    axes = figure.subplots()
    for ok, colour, label in ((True, "tab:blue", "acknowledged"), (False, "tab:red", "failed")):
        chosen = [s for s in sends if s.ok is ok]
        axes.scatter([s.t - start for s in chosen], [s.latency * 1000 for s in chosen], s=4, c=colour, label=label)
    for fault in journal.of(Fault):
        axes.axvline(fault.t - start, color="black", linestyle="--", linewidth=1)
        axes.annotate(f"{fault.action} {fault.target}", (fault.t - start, 1), rotation=90, fontsize=8,
                      xycoords=("data", "axes fraction"), va="top", ha="right")
    axes.set(xlabel="seconds since the first send", ylabel="send latency (ms)", yscale="log",
             title="Synchronous sends during the experiment")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def _plot_ladder(name: str, verdict: LadderVerdict, path: Path) -> Path:
    figure = Figure(figsize=(8, 4))
    axes = figure.subplots()
    steps = range(1, len(verdict.expected_delays_ms) + 1)
    axes.plot(steps, [d / 1000 for d in verdict.expected_delays_ms], "k-o", label="ladder (expected)")
    for message in verdict.messages:
        observed = [(s.retry, s.observed_ms / 1000) for s in message.steps if s.observed_ms is not None]
        axes.scatter([r for r, _ in observed], [d for _, d in observed], s=18, alpha=0.7, label=message.msg_id[-8:])
    axes.set(xlabel="retry", ylabel="delay after hand-back (s)", title=f"{name}: retry ladder, expected vs observed",
             xticks=list(steps))
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def summary(verdicts: Mapping[str, Verdict]) -> Table:
    """One row per experiment: the verdict and the numbers it stands on."""
    table = Table(title="Chaos verdicts")
    for column in ("experiment", "verdict", "numbers", "why"):
        table.add_column(column)
    for name, verdict in verdicts.items():
        table.add_row(name, "[green]PASS[/green]" if verdict.passed else "[red]FAIL[/red]", _numbers(verdict),
                      "\n".join(verdict.reasons) or "-")
    return table


def _numbers(verdict: Verdict) -> str:
    if isinstance(verdict, DeliveryVerdict):
        window = "-" if verdict.failover_window_s is None else f"{verdict.failover_window_s * 1000:.0f} ms"
        with_store = ("" if verdict.store_lost_by is None else
                      f" ({len(verdict.lost_with_store)} more went with {verdict.store_lost_by}'s store)")
        oneway = ("" if not verdict.unacknowledged else f", {verdict.unacknowledged} oneway sends returned "
                  f"({len(verdict.lost_unacknowledged)} never arrived)")
        return (f"{verdict.acknowledged}/{verdict.sent} acknowledged{oneway}, {len(verdict.lost)} lost{with_store}, "
                f"{verdict.failed_sends} failed sends, {verdict.failed_attempts} failed attempts, "
                f"{verdict.duplicates} duplicates\nfailover window {window}; latency p50/p99/max "
                f"{verdict.latency.p50_ms:.1f}/{verdict.latency.p99_ms:.1f}/{verdict.latency.max_ms:.0f} ms "
                f"(in fault: p99 {verdict.latency_in_fault.p99_ms:.1f} ms){_not_ok(verdict)}")
    if isinstance(verdict, ConsumptionVerdict):
        return f"{verdict.deliveries} deliveries; gaps {list(verdict.gaps_s)} s"
    if isinstance(verdict, OverrunVerdict):
        return (f"cleaner's retry after {_seconds(verdict.cleaner_retry_after_s)}, listener ended after "
                f"{_seconds(verdict.listener_ended_after_s)}; {verdict.copies} copies, {verdict.dead_letters} dead "
                f"letters")
    steps = " ".join(f"{d / 1000:g}s" for d in verdict.expected_delays_ms)
    worst = max((abs(s.observed_ms - s.expected_ms) for m in verdict.messages for s in m.steps
                 if s.observed_ms is not None), default=0)
    return (f"ladder {steps}; {len(verdict.messages)} messages, retries seen "
            f"{[m.retries_seen for m in verdict.messages]}, dead letters {[m.dead_letters for m in verdict.messages]}"
            f"\nworst step error {worst} ms{_disturbed(verdict)}")


def _disturbed(verdict: LadderVerdict) -> str:
    """What a broker's death did to the ladders, and why; nothing when it did nothing."""
    counts = (verdict.repeated_retries, verdict.reread_retries, verdict.skipped_retries, verdict.beyond_limit,
              verdict.extra_dead_letters)
    if not any(counts):
        return ""
    repeated, reread, skipped, beyond, extra = counts
    return "\n".join([f"\nretries stored twice {repeated}, read twice {reread}, skipped {skipped}, past the limit "
                       f"{beyond}; dead-lettered twice {extra}", *verdict.explanations])


def _not_ok(verdict: DeliveryVerdict) -> str:
    """Sends stored less durably than asked, and what re-sending them did; nothing when there were none."""
    if not (verdict.not_ok_attempts or verdict.failed_arrived):
        return ""
    return (f"\nnot SEND_OK: sends {verdict.not_ok_sends or '-'} ({verdict.not_ok_arrived} arrived), answers "
            f"{verdict.not_ok_attempts or '-'}; {verdict.resent} re-sent to another broker, "
            f"{verdict.resend_duplicates} duplicates of those; {verdict.failed_arrived} failed sends arrived")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
