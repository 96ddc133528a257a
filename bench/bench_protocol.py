"""Protocol-client benchmark: our asyncio remoting client against the official Java clients, in one run.

Starts its own two-broker bed, then times, one call after the other and after the same warm-up:

- update-subgroup round trips to broker-a, ours (`Admin.update_subscription_group`) and DefaultMQAdminExt's;
- our batch update (`Admin.update_subscription_groups`, N groups a call, as the operator writes them), to broker-b
  so its N groups do not grow the table broker-a persists whole on every single update;
- synchronous sends to a topic on both brokers, ours (`Producer.send`) and DefaultMQProducer's.

The Java side (toolchains/java/AdminBench.java) runs in its own JVM with the default JIT, so it is timed warm.
Prints one JSON document on stdout; progress goes to stderr. Not a test: it states no goals.

    .venv/bin/python bench/bench_protocol.py --calls 2000 --messages 2000
"""

import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import click
from benchlib import configure_logging, machine, nearest_rank, software

from rocketmq_lab.bed import javaprograms, versions
from rocketmq_lab.bed.probe import create_topic
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.remoting import Admin, ConnectionPool, Message, Producer, SendStatus, SubscriptionGroupConfig

log = logging.getLogger("bench_protocol")

SINGLE_GROUPS = 100  # call i writes group i % 100: the broker persists its whole table per update, so keep it fixed
SEND_QUEUES = 4
JAVA_OPTIONS = ["-Xms64m", "-Xmx256m"]  # no jvm.FAST_START: C1-only code would understate a warm official client
JAVA_TIMEOUT = 1800.0

Stats = dict[str, float]


def summary(latencies_ns: Sequence[int], elapsed_ns: int, operations: int | None = None) -> Stats:
    """p50/p99 by nearest rank and the mean, as AdminBench.java computes them; ops/s over the whole timed loop."""
    ordered = sorted(latencies_ns)

    def percentile(q: float) -> float:
        return nearest_rank(ordered, q) / 1e6

    return {"count": len(ordered), "p50_ms": round(percentile(0.50), 3), "p99_ms": round(percentile(0.99), 3),
            "mean_ms": round(statistics.fmean(ordered) / 1e6, 3),
            "ops_per_s": round((operations or len(ordered)) / (elapsed_ns / 1e9), 1)}


async def timed(call: Callable[[int], Awaitable[object]], count: int, warmup: int) -> tuple[list[int], int]:
    """Per-call latencies of `count` sequential calls after `warmup` untimed ones, and the loop's elapsed time."""
    for index in range(warmup):
        await call(index)
    latencies = []
    begun = time.perf_counter_ns()
    for index in range(count):
        started = time.perf_counter_ns()
        await call(index)
        latencies.append(time.perf_counter_ns() - started)
    return latencies, time.perf_counter_ns() - begun


def ratios(ours: Stats, java: Stats) -> Stats:
    """ours / Java per figure: below 1 is faster for latencies, above 1 is faster for ops/s."""
    return {key: round(ours[key] / java[key], 3) for key in ("p50_ms", "p99_ms", "mean_ms", "ops_per_s")}


async def run_ours(cluster: RocketMQCluster, group_prefix: str, topic: str, *, calls: int, messages: int,
                   message_bytes: int, warmup: int, batch_rounds: int) -> dict[str, Stats]:
    single_addr, batch_addr = cluster.brokers[0].addr, cluster.brokers[1].addr
    singles = [SubscriptionGroupConfig(f"{group_prefix}{index}", retry_max_times=1 + index % 16)
               for index in range(SINGLE_GROUPS)]
    batch = [SubscriptionGroupConfig(f"{group_prefix}batch_{index}") for index in range(calls)]
    message = Message(topic, bytes(message_bytes))
    async with ConnectionPool(request_timeout=10.0) as pool:
        admin = Admin(pool, [cluster.namesrv_addr])
        producer = Producer(pool, [cluster.namesrv_addr], group="bench_python_producer")

        async def update_one(index: int) -> None:
            await admin.update_subscription_group(single_addr, singles[index % SINGLE_GROUPS])

        async def update_batch(_: int) -> None:
            await admin.update_subscription_groups(batch_addr, batch)

        async def send(_: int) -> None:
            result = await producer.send(message)
            if result.status is not SendStatus.SEND_OK:
                raise RuntimeError(f"send stored as {result.status}")

        log.info("ours: %d update-subgroup calls", calls)
        update = summary(*await timed(update_one, calls, warmup))
        log.info("ours: %d batch calls of %d groups", batch_rounds, calls)
        # One untimed round creates the groups, so every timed round replaces them at the same table size.
        latencies, elapsed = await timed(update_batch, batch_rounds, 1)
        log.info("ours: %d sends", messages)
        sends = summary(*await timed(send, messages, warmup))
    return {"update_subgroup": update, "send": sends,
            "update_subgroups_batch": {**summary(latencies, elapsed, batch_rounds * calls), "groups_per_call": calls}}


def run_java(cluster: RocketMQCluster, group_prefix: str, topic: str, *, calls: int, messages: int,
             message_bytes: int, warmup: int) -> dict[str, Any]:
    programs = javaprograms.compiled(cluster.version)
    home = cluster.workdir / "java-bench"
    home.mkdir(parents=True, exist_ok=True)
    settings = {"namesrv": cluster.namesrv_addr, "broker": cluster.brokers[0].addr, "groupPrefix": group_prefix,
                "groups": SINGLE_GROUPS, "calls": calls, "topic": topic, "messages": messages,
                "messageBytes": message_bytes, "warmup": warmup}
    argv = programs.argv("AdminBench", *(f"{key}={value}" for key, value in settings.items()), home=home,
                         options=JAVA_OPTIONS)
    log.info("Java: DefaultMQAdminExt and DefaultMQProducer (JVM start, warm-up, then the same calls)")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=JAVA_TIMEOUT, check=False, cwd=home,
                            stdin=subprocess.DEVNULL)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"AdminBench failed (exit {result.returncode}); client logs under {home}\n"
                           f"{result.stdout[-2000:]}{result.stderr[-4000:]}")
    answer: dict[str, Any] = json.loads(lines[-1])  # the last line: the JVM or the client may print notices before
    return answer


@click.command()
@click.option("--rocketmq-version", default=versions.ROCKETMQ_5, show_default=True,
              type=click.Choice(versions.ROCKETMQ_VERSIONS), help="RocketMQ version of the bed and the Java clients.")
@click.option("--calls", default=2000, show_default=True, type=click.IntRange(1),
              help="Timed update-subgroup calls per client; also the groups per batch call.")
@click.option("--messages", default=2000, show_default=True, type=click.IntRange(1), help="Timed sends per client.")
@click.option("--message-bytes", default=1024, show_default=True, type=click.IntRange(1), help="Body size of a send.")
@click.option("--warmup", default=200, show_default=True, type=click.IntRange(0),
              help="Untimed calls (and sends) before each timed loop.")
@click.option("--batch-rounds", default=10, show_default=True, type=click.IntRange(1),
              help="Timed batch calls (each writes --calls groups).")
def main(*, rocketmq_version: str, calls: int, messages: int, message_bytes: int, warmup: int,
         batch_rounds: int) -> None:
    """Update-subgroup p50/p99 and send throughput, ours vs the official Java clients, as one JSON document."""
    configure_logging()
    workdir = Path(tempfile.mkdtemp(prefix="bench-protocol-"))
    cluster = RocketMQCluster(rocketmq_version, workdir / "bed")
    group_prefix, topic = f"bench_{uuid.uuid4().hex[:8]}_", f"bench_send_{uuid.uuid4().hex[:8]}"
    load = os.getloadavg()[0]
    try:
        cluster.start()
        create_topic(cluster.namesrv_addr, [broker.addr for broker in cluster.brokers], topic, SEND_QUEUES)
        cluster.wait_routed(topic)
        ours = asyncio.run(run_ours(cluster, group_prefix, topic, calls=calls, messages=messages,
                                    message_bytes=message_bytes, warmup=warmup, batch_rounds=batch_rounds))
        java = run_java(cluster, group_prefix, topic, calls=calls, messages=messages, message_bytes=message_bytes,
                        warmup=warmup)
    finally:
        cluster.stop()
    shutil.rmtree(workdir)  # kept when anything failed: its logs are named in the error
    batch = ours["update_subgroups_batch"]
    report = {
        "benchmark": "protocol-client",
        "machine": machine(load),
        "versions": software(rocketmq_version, java=java["java"]),
        "settings": {"brokers": len(cluster.brokers), "calls": calls, "messages": messages,
                     "message_bytes": message_bytes, "warmup": warmup, "batch_rounds": batch_rounds},
        "update_subgroup": {"ours": ours["update_subgroup"], "java": java["update_subgroup"],
                            "ours_to_java": ratios(ours["update_subgroup"], java["update_subgroup"])},
        "update_subgroups_batch": {"ours": batch, "ours_to_java_single": {
            "ops_per_s": round(batch["ops_per_s"] / java["update_subgroup"]["ops_per_s"], 3)}},
        "send": {"ours": ours["send"], "java": java["send"], "ours_to_java": ratios(ours["send"], java["send"])},
    }
    click.echo(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
