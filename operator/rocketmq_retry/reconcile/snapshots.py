"""Each master's last read, so that a pass of event handlers may reuse a read of the last few seconds.

A pass reads every master's whole group table; at 10,000 groups that is about a second of parsing, repeated by
every pass of a burst. An event pass may therefore start from a read younger than `max_age`, with the writes of later
passes folded in (every write of the operator goes through these passes), but only to learn that a group is missing
or already as desired: an edit of a group that exists is planned from a new read (reconcile/apply.py), because a
group write replaces the whole config and would put back the older values of fields another tool changed meanwhile.
What a recent read cannot show (an edit by hand of an owned field, a broker that lost its store) is seen by the next
new read: sweep passes, finalizers and the sweep the master watch starts always read.
"""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.reconcile.reading import BrokerSnapshot, ClusterAdmin, Master, read_broker
from rocketmq_retry.remoting.models import TopicConfig


class Snapshots:
    def __init__(self) -> None:
        self._kept: dict[Master, tuple[datetime, BrokerSnapshot]] = {}

    def recent(self, master: Master, *, with_topics: bool, max_age: float, now: datetime) -> BrokerSnapshot | None:
        """The kept read of `master` when it is younger than `max_age` seconds at `now` (the pass's time) and has
        topics if asked."""
        kept = self._kept.get(master)
        if kept is not None and (now - kept[0]).total_seconds() < max_age and (kept[1].topics_read or not with_topics):
            return kept[1]
        return None

    async def read(self, admin: ClusterAdmin, master: Master, call_timeout: float, *, with_topics: bool,
                   now: datetime) -> BrokerSnapshot:
        """A new read of `master`, kept as read at `now`."""
        self._kept.pop(master, None)  # a failed read must not leave an older one to be reused
        snapshot = await read_broker(admin, master, call_timeout, with_topics=with_topics)
        self._kept[master] = (now, snapshot)
        return snapshot

    def wrote(self, master: Master, configs: Sequence[JsonObject], retry_topics: Mapping[str, TopicConfig]) -> None:
        """Fold group configs and retry topics (by group) the master acknowledged into its kept snapshot."""
        kept = self._kept.get(master)
        if kept is not None:
            read_at, snapshot = kept
            groups = {**snapshot.groups, **{str(config["groupName"]): config for config in configs}}
            topics = {**snapshot.retry_topics, **retry_topics}
            self._kept[master] = (read_at, replace(snapshot, groups=groups, retry_topics=topics))

    def forget(self, master: Master) -> None:
        """After a failed write the master's state is unknown: the next pass reads it."""
        self._kept.pop(master, None)
