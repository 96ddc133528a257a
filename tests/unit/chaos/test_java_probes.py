"""Running a probe program: its journal lines become events, and a failing, hanging or garbled one says why.

A Python stand-in plays the JVM, so these need no Java; the real programs run in tests/integration.
"""

import asyncio
import sys
import time
from pathlib import Path

import pytest

from rocketmq_chaos.java_probes import ConsumeMode, ConsumerSettings, JavaProbeFailed, run_events
from rocketmq_chaos.journal import Attempt, Receive, Send

SEND = ('{"kind":"send","t":1.5,"msg_id":"M1","ok":true,"latency":0.002,'
        '"attempts":[{"broker":"broker-a","started":1.5,"latency":0.002,"error":null}],"error":null}')
RECEIVE = ('{"kind":"receive","t":2.0,"msg_id":"M1","topic":"T","broker":"broker-a","reconsume_times":0,'
           '"stored_at":1.6,"origin_msg_id":null}')


def program(source: str) -> list[str]:
    return [sys.executable, "-c", source]


async def test_printed_lines_become_journal_events(tmp_path: Path) -> None:
    events = await run_events(program(f"print({SEND!r}); print(); print({RECEIVE!r})"), cwd=tmp_path, limit=30,
                              what="probe")
    assert events == [Send(1.5, "M1", True, 0.002, (Attempt("broker-a", 1.5, 0.002),)),
                      Receive(2.0, "M1", "T", "broker-a", 0, 1.6)]


async def test_a_failing_program_is_reported_with_its_stderr(tmp_path: Path) -> None:
    source = "import sys; print('Exception in thread main: no route', file=sys.stderr); sys.exit(3)"
    with pytest.raises(JavaProbeFailed, match=r"(?s)probe exited with 3.*no route"):
        await run_events(program(source), cwd=tmp_path, limit=30, what="probe")


async def test_an_overrunning_program_is_killed_and_reported(tmp_path: Path) -> None:
    source = "import sys, time; print('started', file=sys.stderr, flush=True); time.sleep(60)"
    begun = time.monotonic()
    with pytest.raises(JavaProbeFailed, match=r"(?s)probe was killed after 1 s.*started"):
        await run_events(program(source), cwd=tmp_path, limit=1.0, what="probe")
    assert time.monotonic() - begun < 30


async def test_output_that_is_not_a_journal_event_fails_the_run(tmp_path: Path) -> None:
    with pytest.raises(JavaProbeFailed, match="probe printed something that is not a journal event"):
        await run_events(program("print('12:00:00 INFO RocketmqRemoting - connected')"), cwd=tmp_path, limit=30,
                         what="probe")


async def test_a_stop_closes_the_programs_stdin_and_it_ends_with_what_it_printed(tmp_path: Path) -> None:
    source = f"import sys; print({RECEIVE!r}, flush=True); sys.stdin.read(); print({SEND!r})"
    stop = asyncio.Event()
    run = asyncio.create_task(run_events(program(source), cwd=tmp_path, limit=30, what="probe", stop=stop))
    await asyncio.sleep(0.5)
    assert not run.done()  # it waits on its stdin until told
    stop.set()
    events = await run
    assert [e.kind for e in events] == ["receive", "send"]


async def test_a_program_that_ends_before_the_stop_is_not_waited_for(tmp_path: Path) -> None:
    events = await run_events(program(f"print({RECEIVE!r})"), cwd=tmp_path, limit=30, what="probe",
                              stop=asyncio.Event())
    assert [e.kind for e in events] == ["receive"]


def test_consumer_settings_become_the_probes_flags() -> None:
    assert ConsumerSettings().flags() == []
    assert ConsumerSettings(ConsumeMode.ORDERLY, max_reconsume_times=3).flags() == [
        "--orderly", "--max-reconsume-times", "3"]
    assert ConsumerSettings(consume_timeout_minutes=1, overrun_s=150).flags() == [
        "--consume-timeout", "1", "--overrun-seconds", "150"]
