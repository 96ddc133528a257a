"""Journals built by hand for the checker and report tests."""

from rocketmq_chaos.journal import Attempt, DeadLetter, HandBack, Journal, Receive, Send

LADDER = (1000, 2000, 3000)


def send(t: float, msg_id: str, *brokers: str, failed: tuple[str, ...] = (), ok: bool = True) -> Send:
    attempts = [Attempt(b, t, 0.001, "connect failed") for b in failed] + [Attempt(b, t, 0.002) for b in brokers]
    return Send(t, msg_id, ok, 0.003 if ok else 0.01, tuple(attempts), None if ok else "every attempt failed")


def receive(t: float, msg_id: str, reconsume_times: int = 0, broker: str = "a") -> Receive:
    return Receive(t, msg_id, "T", broker, reconsume_times, t)


def delivered(*msg_ids: str) -> list[Receive]:
    return [receive(100.0, msg_id) for msg_id in msg_ids]


def ladder_journal(delays_ms: list[int], *, dead_letters: int = 1, msg_id: str = "m1") -> Journal:
    events: list[object] = [receive(10.0, msg_id)]
    handed_at = 10.0
    for retry, delay in enumerate(delays_ms, start=1):
        events.append(HandBack(handed_at, msg_id, retry - 1))
        handed_at += delay / 1000
        events.append(Receive(handed_at + 0.05, msg_id, "%RETRY%G", "a", retry, handed_at))
    events.append(HandBack(handed_at, msg_id, len(delays_ms)))
    events += [DeadLetter(handed_at + 0.1, msg_id, "a", len(delays_ms) + 1, handed_at + 0.05)] * dead_letters
    return Journal(events)  # type: ignore[arg-type]
