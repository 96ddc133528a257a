"""What happened during an experiment, one JSON line per event, in wall-clock seconds.

Wall clock rather than monotonic time, because broker store timestamps (the moment a retry really arrived)
are wall-clock milliseconds of the same machine and the verdicts compare the two.
"""

import dataclasses
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

# Statuses are the clients' SendStatus names: how a broker stored a message it answered for. SEND_OK, or
# FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE: stored on the master all the same, only less durably
# (a disk not flushed in time, a SYNC_MASTER without its slave's copy).
SEND_OK: Final = "SEND_OK"


@dataclass(frozen=True)
class Attempt:
    """One request of a send to one broker. `status`: how the broker stored the message when it answered; None when
    it did not (`error`), or in journals written before statuses were recorded."""

    broker: str
    started: float
    latency: float
    error: str | None = None
    status: str | None = None


SendMode: TypeAlias = Literal["sync", "async", "oneway"]


@dataclass(frozen=True)
class Send:
    """One send as the application saw it: `ok` when acknowledged (sync: after all its attempts; async: by its
    callback), or, oneway, when the call returned: no broker acknowledges a oneway send. `status`: the acknowledged
    send's result status (sync: its last answer's), as the application got it; None for a send not acknowledged, or
    in journals written before statuses were recorded."""

    t: float
    msg_id: str
    ok: bool
    latency: float
    attempts: tuple[Attempt, ...] = ()
    error: str | None = None
    mode: SendMode = "sync"
    status: str | None = None
    kind: Literal["send"] = "send"

    @property
    def acknowledged(self) -> bool:
        return self.ok and self.mode != "oneway"

    @property
    def not_ok(self) -> bool:
        """Acknowledged with a status other than SEND_OK: stored, but not as durably as asked."""
        return self.acknowledged and self.status not in (None, SEND_OK)

    @property
    def stored_copies(self) -> int:
        """How many times brokers stored the message by their answers: a re-send after an answer that was not
        SEND_OK (retryAnotherBrokerWhenNotStoreOK) stores one more copy."""
        return sum(a.status is not None for a in self.attempts)

    @property
    def broker(self) -> str | None:
        """Where the message was stored (the last attempt's broker) when acknowledged."""
        return self.attempts[-1].broker if self.ok and self.attempts else None


@dataclass(frozen=True)
class Receive:
    """A delivery to the consumer probe; `reconsume_times` 0 is the first delivery, n the n-th retry."""

    t: float
    msg_id: str
    topic: str
    broker: str
    reconsume_times: int
    stored_at: float  # when the broker stored this copy (a retry's arrival)
    origin_msg_id: str | None = None
    kind: Literal["receive"] = "receive"


@dataclass(frozen=True)
class HandBack:
    """The consumer failed a delivery on purpose and handed it back (send-back) at `t`."""

    t: float
    msg_id: str
    reconsume_times: int
    kind: Literal["hand_back"] = "hand_back"


@dataclass(frozen=True)
class DeadLetter:
    t: float
    msg_id: str
    broker: str
    reconsume_times: int
    stored_at: float
    kind: Literal["dead_letter"] = "dead_letter"


@dataclass(frozen=True)
class Fault:
    """An injected fault (`kill`, `pause`, ...) or its end (`resume`, `restart`), on `target`."""

    t: float
    action: str
    target: str
    kind: Literal["fault"] = "fault"


Event: TypeAlias = Send | Receive | HandBack | DeadLetter | Fault
_TYPES: dict[str, type[Any]] = {"send": Send, "receive": Receive, "hand_back": HandBack, "dead_letter": DeadLetter,
                                "fault": Fault}


@dataclass
class Journal:
    events: list[Event] = field(default_factory=list)

    def record(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            for event in sorted(self.events, key=lambda e: e.t):
                out.write(json.dumps(dataclasses.asdict(event), separators=(",", ":")) + "\n")

    @classmethod
    def read(cls, path: Path) -> "Journal":
        return cls(list(parse_lines(path.read_text().splitlines())))


def parse_lines(lines: Iterable[str]) -> Iterator[Event]:
    """Events from JSON lines (blank lines skipped): a written journal, or what a probe program printed."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        raw = json.loads(line)
        kind = raw.get("kind")
        if kind not in _TYPES:
            raise ValueError(f"journal line {number}: unknown event kind {kind!r}")
        if kind == "send":
            raw["attempts"] = tuple(Attempt(**attempt) for attempt in raw.get("attempts", ()))
        yield _TYPES[kind](**raw)
