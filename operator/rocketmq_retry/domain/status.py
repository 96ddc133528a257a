"""The status stanza's data parts in the CRD's field names: per-broker states, the k/n summary, ladders."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from rocketmq_retry.domain.conditions import Outcome, Reason
from rocketmq_retry.domain.consumers import CLIENT_IDS_SHOWN, ConsumerClass
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.ladder import Ladder
from rocketmq_retry.domain.timestamps import format_timestamp


class BrokerState(StrEnum):
    APPLIED = "Applied"
    FAILED = "Failed"
    PENDING = "Pending"
    UNMANAGED = "Unmanaged"


@dataclass(frozen=True)
class SlaveStatus:
    """Whether a slave holds what its master was given.

    The operator never writes to a slave: a slave copies its master's groups on a timer (every 10 s), 4.x refuses a
    write and 5.x takes one only until its next copy. So a slave is observed, and a promoted slave that lacks the
    config is repaired as a master once the name servers list it as one.
    """

    broker_id: int
    address: str
    holds_config: bool | None  # None: not judged (the slave could not be read, or the policy applies nothing)
    message: str | None = None

    def to_json(self) -> JsonObject:
        entry: JsonObject = {"brokerId": self.broker_id, "address": self.address}
        if self.holds_config is not None:
            entry["holdsConfig"] = self.holds_config
        if self.message:
            entry["message"] = self.message
        return entry


@dataclass(frozen=True)
class BrokerStatus:
    """A broker name as a policy sees it: its master's state, and its slaves'."""

    name: str
    state: BrokerState
    address: str | None = None
    version: str | None = None
    message: str | None = None
    last_applied: datetime | None = None
    slaves: tuple[SlaveStatus, ...] = ()

    def to_json(self) -> JsonObject:
        entry: JsonObject = {"name": self.name, "state": str(self.state)}
        optional = {"address": self.address, "version": self.version, "message": self.message}
        entry |= {key: value for key, value in optional.items() if value}
        if self.last_applied is not None:
            entry["lastAppliedTime"] = format_timestamp(self.last_applied)
        if self.slaves:
            entry["slaves"] = [slave.to_json() for slave in self.slaves]
        return entry

    @property
    def slaves_behind(self) -> bool:
        """The master holds the config and a slave read since does not (yet)."""
        return self.state is BrokerState.APPLIED and any(slave.holds_config is False for slave in self.slaves)


def slaves_catching_up(brokers: Sequence[BrokerStatus], now: datetime, window_s: float) -> bool:
    """Some master took a write less than `window_s` ago and a slave of it does not hold it yet: the copy is due
    within the slave's period, so it is worth looking again soon rather than at the next sweep."""
    return any(broker.slaves_behind and broker.last_applied is not None
               and (now - broker.last_applied).total_seconds() < window_s for broker in brokers)


def masters_summary(brokers: Sequence[BrokerStatus]) -> JsonObject:
    """syncedMasters, totalMasters and the `k/n` string the Synced printer column shows."""
    synced = sum(broker.state is BrokerState.APPLIED for broker in brokers)
    return {"syncedMasters": synced, "totalMasters": len(brokers), "synced": f"{synced}/{len(brokers)}"}


def apply_outcome(brokers: Sequence[BrokerStatus]) -> Outcome:
    """The Ready outcome of writing to every master: partial application is normal and retried, not an error."""
    failed = [broker for broker in brokers if broker.state is BrokerState.FAILED]
    applied = sum(broker.state is BrokerState.APPLIED for broker in brokers)
    details = "; ".join(f"{broker.name}: {broker.message or 'failed'}" for broker in failed)
    if not brokers:
        return Outcome(Reason.BROKER_UNREACHABLE, "the name servers report no master broker for the cluster")
    if applied == len(brokers):
        return Outcome(Reason.SYNCED, f"applied on all {applied} master brokers")
    if applied == 0 and len(failed) == len(brokers):
        return Outcome(Reason.BROKER_UNREACHABLE, f"no master broker accepted the config: {details}")
    if failed:
        return Outcome(Reason.PARTIALLY_APPLIED, f"applied on {applied} of {len(brokers)} master brokers; {details}")
    return Outcome(Reason.PROGRESSING, f"applied on {applied} of {len(brokers)} master brokers so far")


def ladder_status(ladder: Ladder) -> JsonObject:
    return {
        "client": str(ladder.client),
        "source": str(ladder.source),
        "retries": ladder.retries,
        "delaysMillis": list(ladder.delays_ms),
        "finalWaitMillis": ladder.final_wait_ms,
        "totalMillisToDeadLetter": ladder.total_ms,
        "summary": ladder.summary,
    }


def consumer_class_status(item: ConsumerClass) -> JsonObject:
    """One line of status.consumers: a kind of live client, how many, and the limit they dead-letter after."""
    limit = item.limit
    entry: JsonObject = {"kind": str(limit.kind), "instances": item.instances,
                         "limitFrom": "Group" if limit.follows_group else "Client"}
    if limit.retries is not None:
        entry["deadLetterAfterRetries"] = limit.retries
    if limit.in_place_every_ms is not None:
        entry["inPlaceEveryMillis"] = limit.in_place_every_ms
    entry["summary"] = item.summary
    entry["clients"] = list(item.client_ids[:CLIENT_IDS_SHOWN])
    return entry


def retry_backlog_status(per_master: Sequence[tuple[str, int]]) -> JsonObject:
    """status.retryBacklog: retries waiting in the group's retry topic, in total and per master."""
    return {"messages": sum(count for _, count in per_master),
            "brokers": [{"name": name, "messages": count} for name, count in per_master]}
