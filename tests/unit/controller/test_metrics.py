"""The operator's metrics, driven through the engine and the sweep against the in-memory cluster."""

from typing import Any

from rocketmq_retry.controller.engine import Runtime, reconcile_record
from rocketmq_retry.controller.metrics import Trigger
from rocketmq_retry.controller.sweep import Sweeper
from rocketmq_retry.domain.conditions import Reason
from tests.unit.controller.test_engine import NAMESRV, NOW, record, runtime_for
from tests.unit.controller.test_sweep import RecordingSink
from tests.unit.fakes import claims, two_masters

CLUSTER = "*@127.0.0.1:9876"  # the key of NAMESRV


def _spec(group: str, retries: int = 3) -> dict[str, Any]:
    return {"cluster": NAMESRV, "consumerGroup": group, "maxRetries": retries}


def sample(runtime: Runtime, name: str, **labels: str) -> float | None:
    return runtime.metrics.registry.get_sample_value(name, labels)


def reconciles(runtime: Runtime, trigger: Trigger) -> dict[str, float]:
    """The non-zero reconcile counts of a trigger, by result."""
    counts = {reason: sample(runtime, "rocketmq_retry_reconciles_total", trigger=trigger, result=reason)
              for reason in Reason}
    return {str(reason): count for reason, count in counts.items() if count}


async def test_event_reconciles_are_counted_by_ready_reason_and_timed() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    owner = record("owner", _spec("orders"), age=60)
    loser = record("loser", _spec("orders"))
    known = [owner, loser]
    for policy in [owner, loser, record("bad", _spec("bad group", -1)),
                   record("paused", _spec("p"), annotations={"rocketmq-retry.io/pause-reconciliation": "true"}),
                   record("off", _spec("u"), annotations={"rocketmq-retry.io/managed": "false"})]:
        await reconcile_record(runtime, policy, claims(*known), NOW)
    admin.broker("broker-b").down = True
    await reconcile_record(runtime, record("half", _spec("half")), claims(), NOW)

    assert reconciles(runtime, Trigger.EVENT) == {"Synced": 1, "Conflict": 1, "InvalidSpec": 1,
                                                  "ReconciliationPaused": 1, "Unmanaged": 1, "PartiallyApplied": 1}
    assert reconciles(runtime, Trigger.SWEEP) == {}
    assert sample(runtime, "rocketmq_retry_reconciles_total", trigger="sweep", result="Synced") == 0  # pre-created
    assert sample(runtime, "rocketmq_retry_reconcile_duration_seconds_count", trigger="event") == 6
    assert sample(runtime, "rocketmq_retry_reconcile_duration_seconds_bucket", trigger="event", le="30.0") == 6
    assert sample(runtime, "rocketmq_retry_reconcile_duration_seconds_count", trigger="sweep") == 0


async def test_the_sweep_counts_each_group_it_rewrites_on_a_broker() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    records = [record("a", _spec("a", 1)), record("b", _spec("b", 2))]
    sweeper = Sweeper(runtime, lambda: records, RecordingSink(), clock=lambda: NOW)

    await sweeper.sweep_once()  # nothing applied them yet: two groups on two brokers
    assert sample(runtime, "rocketmq_retry_drift_corrections_total", cluster=CLUSTER) == 4

    await sweeper.sweep_once()  # nothing drifted
    admin.broker("broker-a").groups["a"]["retryMaxTimes"] = 16
    await sweeper.sweep_once()

    assert sample(runtime, "rocketmq_retry_drift_corrections_total", cluster=CLUSTER) == 5
    assert reconciles(runtime, Trigger.SWEEP) == {"Synced": 6}  # two policies, three passes
    assert sample(runtime, "rocketmq_retry_reconcile_duration_seconds_count", trigger="sweep") == 3  # one cluster


async def test_brokers_out_of_sync_follow_the_last_pass_that_could_list_the_masters() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    records = [record("a", _spec("a")), record("paused", _spec("p"),
                                                annotations={"rocketmq-retry.io/pause-reconciliation": "true"})]
    sweeper = Sweeper(runtime, lambda: list(records), RecordingSink(), clock=lambda: NOW)

    await sweeper.sweep_once()
    assert sample(runtime, "rocketmq_retry_brokers_out_of_sync", cluster=CLUSTER) == 0  # Unmanaged is not Failed

    admin.broker("broker-b").down = True
    await sweeper.sweep_once()
    assert sample(runtime, "rocketmq_retry_brokers_out_of_sync", cluster=CLUSTER) == 1  # once, for both policies

    admin.namesrv_down = True
    await sweeper.sweep_once()
    assert sample(runtime, "rocketmq_retry_brokers_out_of_sync", cluster=CLUSTER) == 1  # nothing learnt

    admin.namesrv_down = admin.broker("broker-b").down = False
    await sweeper.sweep_once()
    assert sample(runtime, "rocketmq_retry_brokers_out_of_sync", cluster=CLUSTER) == 0

    records.clear()
    await sweeper.sweep_once()
    assert sample(runtime, "rocketmq_retry_brokers_out_of_sync", cluster=CLUSTER) is None


async def test_the_policies_gauge_counts_conditions_as_last_written_and_zeroes_the_rest() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    bad = record("bad", _spec("bad group", -1))
    owner = record("owner", _spec("orders"), age=60)
    records = [bad, owner, record("loser", _spec("orders")),
               record("paused", _spec("p"), annotations={"rocketmq-retry.io/pause-reconciliation": "true"}),
               record("new", _spec("new"))]
    sweeper = Sweeper(runtime, lambda: list(records), RecordingSink(), clock=lambda: NOW)
    # The sweep skips invalid specs; their status comes from here.
    await reconcile_record(runtime, bad, claims(*records), NOW)

    await sweeper.sweep_once()

    def policies() -> dict[tuple[str, str], float | None]:
        return {(condition, status): sample(runtime, "rocketmq_retry_policies", condition=condition, status=status)
                for condition, status in [("Ready", "True"), ("Ready", "False"), ("Ready", "Unknown"),
                                          ("Reconciling", "True"), ("Stalled", "True")]}

    assert policies() == {("Ready", "True"): 2, ("Ready", "False"): 2, ("Ready", "Unknown"): 1,
                          ("Reconciling", "True"): 0, ("Stalled", "True"): 2}

    records.remove(owner)  # the loser takes over the group
    admin.broker("broker-b").down = True
    await sweeper.sweep_once()

    assert policies() == {("Ready", "True"): 0, ("Ready", "False"): 3, ("Ready", "Unknown"): 1,
                          ("Reconciling", "True"): 2, ("Stalled", "True"): 1}
