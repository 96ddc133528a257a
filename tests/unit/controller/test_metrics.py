"""The operator's metrics, driven through the control loop against the in-memory cluster."""

from rocketmq_retry.controller.metrics import Trigger
from rocketmq_retry.domain.conditions import Reason
from tests.unit.controller.loopbed import CLUSTER, LoopBed, policy_spec, record
from tests.unit.fakes import java_push_consumer, two_masters

PAUSED = {"rocketmq-retry.io/pause-reconciliation": "true"}


def reconciles(bed: LoopBed, trigger: Trigger) -> dict[str, float]:
    """The non-zero reconcile counts of a trigger, by result."""
    counts = {reason: bed.sample("rocketmq_retry_reconciles_total", trigger=trigger, result=reason)
              for reason in Reason}
    return {str(reason): count for reason, count in counts.items() if count}


async def test_event_reconciles_are_counted_by_ready_reason_and_passes_timed() -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("owner", policy_spec("orders"), age=60), record("loser", policy_spec("orders")),
              record("bad", policy_spec("bad group", -1)), record("paused", policy_spec("p"), annotations=PAUSED),
              record("off", policy_spec("u"), annotations={"rocketmq-retry.io/managed": "false"}))
    await bed.settle()
    bed.admin.broker("broker-b").down = True
    bed.apply(record("half", policy_spec("half")))
    await bed.settle()

    assert reconciles(bed, Trigger.EVENT) == {"Synced": 1, "Conflict": 1, "InvalidSpec": 1,
                                              "ReconciliationPaused": 1, "Unmanaged": 1, "PartiallyApplied": 1}
    assert reconciles(bed, Trigger.SWEEP) == {}
    assert bed.sample("rocketmq_retry_reconciles_total", trigger="sweep", result="Synced") == 0  # pre-created
    # A pass per cluster (and one for the invalid spec), not per policy.
    assert bed.sample("rocketmq_retry_reconcile_duration_seconds_count", trigger="event") == 3
    assert bed.sample("rocketmq_retry_reconcile_duration_seconds_bucket", trigger="event", le="30.0") == 3
    assert bed.sample("rocketmq_retry_reconcile_duration_seconds_count", trigger="sweep") == 0


async def test_the_sweep_counts_each_group_it_rewrites_on_a_broker() -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("a", policy_spec("a", 1)), record("b", policy_spec("b", 2)))
    await bed.settle()  # applied by the event pass: no drift corrected
    assert bed.sample("rocketmq_retry_drift_corrections_total", cluster=CLUSTER) is None

    bed.loop.resync("RetryPolicy")
    await bed.settle()  # nothing drifted
    bed.admin.broker("broker-a").groups["a"]["retryMaxTimes"] = 16
    bed.admin.broker("broker-b").groups.clear()
    bed.loop.resync("RetryPolicy")
    await bed.settle()

    assert bed.sample("rocketmq_retry_drift_corrections_total", cluster=CLUSTER) == 3
    assert reconciles(bed, Trigger.SWEEP) == {"Synced": 4}  # two policies, two fresh passes
    assert bed.sample("rocketmq_retry_reconcile_duration_seconds_count", trigger="sweep") == 2  # one cluster


async def test_brokers_out_of_sync_follow_the_last_pass_that_could_list_the_masters() -> None:
    bed = LoopBed(two_masters())
    a = record("a", policy_spec("a"))
    bed.apply(a, record("paused", policy_spec("p"), annotations=PAUSED))

    async def sweep() -> float | None:
        bed.loop.resync("RetryPolicy")
        await bed.settle()
        return bed.sample("rocketmq_retry_brokers_out_of_sync", cluster=CLUSTER)

    assert await sweep() == 0  # Unmanaged is not Failed
    bed.admin.broker("broker-b").down = True
    assert await sweep() == 1  # once, for both policies
    bed.admin.namesrv_down = True
    assert await sweep() == 1  # nothing learnt
    bed.admin.namesrv_down = bed.admin.broker("broker-b").down = False
    assert await sweep() == 0

    bed.delete(a)
    bed.delete(record("paused", policy_spec("p")))
    bed.apply(record("elsewhere", policy_spec("e", cluster={"nameServers": "10.0.0.1:9876"})))
    assert await sweep() is None


async def test_the_policies_gauge_counts_conditions_as_last_written_and_zeroes_the_rest() -> None:
    bed = LoopBed(two_masters())
    owner = record("owner", policy_spec("orders"), age=60)
    bed.apply(record("bad", policy_spec("bad group", -1)), owner, record("loser", policy_spec("orders")),
              record("paused", policy_spec("p"), annotations=PAUSED), record("new", policy_spec("new")))
    await bed.settle()
    bed.loop.resync("RetryPolicy")
    await bed.settle()

    def policies() -> dict[tuple[str, str], float | None]:
        return {(condition, status): bed.sample("rocketmq_retry_policies", condition=condition, status=status)
                for condition, status in [("Ready", "True"), ("Ready", "False"), ("Ready", "Unknown"),
                                          ("Reconciling", "True"), ("Stalled", "True")]}

    assert policies() == {("Ready", "True"): 2, ("Ready", "False"): 2, ("Ready", "Unknown"): 1,
                          ("Reconciling", "True"): 0, ("Stalled", "True"): 2}

    bed.delete(owner)  # the loser takes over the group
    bed.admin.broker("broker-b").down = True
    await bed.settle()
    bed.loop.resync("RetryPolicy")
    await bed.settle()

    assert policies() == {("Ready", "True"): 0, ("Ready", "False"): 3, ("Ready", "Unknown"): 1,
                          ("Reconciling", "True"): 2, ("Stalled", "True"): 1}


async def test_the_sweep_reports_the_retry_backlog_and_live_consumers_of_the_cluster() -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("a", policy_spec("a", 1)), record("b", policy_spec("b", 2)))
    await bed.settle()
    bed.admin.broker("broker-a").retry_offsets = {"a": [(10, 4), (3, 3)], "b": [(7, 0)]}
    bed.admin.broker("broker-b").retry_offsets = {"a": [(2, 1)]}
    bed.admin.broker("broker-a").consumers["a"] = ("CLUSTERING", {"c1": java_push_consumer(),
                                                                  "c2": java_push_consumer(orderly=True)})
    bed.loop.resync("RetryPolicy")
    await bed.settle()

    assert bed.sample("rocketmq_retry_retry_backlog", cluster=CLUSTER) == 6 + 7 + 1
    assert bed.sample("rocketmq_retry_live_consumers", cluster=CLUSTER, kind="RemotingConcurrent") == 1
    assert bed.sample("rocketmq_retry_live_consumers", cluster=CLUSTER, kind="RemotingOrderly") == 1
    assert bed.sample("rocketmq_retry_live_consumers", cluster=CLUSTER, kind="Broadcast") == 0
    status = bed.memory.current(record("a", {})).status
    assert status["retryBacklog"] == {"messages": 7, "brokers": [{"name": "broker-a", "messages": 6},
                                                                 {"name": "broker-b", "messages": 1}]}

    bed.admin.broker("broker-a").retry_offsets = {}
    bed.admin.broker("broker-b").retry_offsets = {}
    bed.loop.resync("RetryPolicy")
    await bed.settle()
    assert bed.sample("rocketmq_retry_retry_backlog", cluster=CLUSTER) == 0
    assert bed.memory.current(record("a", {})).status.get("retryBacklog") is None
