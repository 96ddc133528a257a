"""Election benchmark: RocketMQ 5.x controller mode, a master SIGKILLed, and the operator catching up.

Starts its own control plane and a 5.5.0 bed in controller mode (one DLedger controller, two broker names of two
replicas each), the chart's ServiceAccount and one operator, and N RetryPolicies, all Ready. Then, per run:

1. waits until the controller counts both replicas of broker-a in its sync-state set (it elects only among those);
2. creates F fresh policies and, as soon as they are Ready, SIGKILLs broker-a's master: its replica copies the
   master's groups every 10 s, so it has likely not copied theirs; `election_s` = until the name server lists the
   other replica as broker-a's master; `missing_at_election` = fresh groups the new master lacked then;
3. `groups_on_new_master_s` = from the election until the new master holds every group as the policies ask (read
   with our admin client every 0.1 s): what the replica had not copied, the operator writes;
4. `status_verified_s` = from the election until every policy's status names the new master as broker-a's, Applied
   (a list of the policies every 0.1 s): the operator found the new master (its master watch looks every 2 s) and
   read the config back from it;
5. restarts the killed replica, which rejoins as a slave, and waits until every policy reports it holding the config.

Prints one JSON document on stdout; progress goes to stderr. Not a test: it states no goals.

    .venv/bin/python bench/bench_election.py --policies 100 --runs 3
"""

import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import click
from bench_convergence import ACCOUNT, MAX_RETRIES, Operator, Policies, admin_client, converge, start_bed
from benchlib import configure_logging, machine, software

from rocketmq_lab.bed import versions
from rocketmq_lab.bed.kube import ControlPlane
from rocketmq_lab.bed.processes import wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.bed.topology import Topology
from rocketmq_retry.controller.config import DEFAULT_SWEEP_INTERVAL
from rocketmq_retry.remoting import Admin, ConnectionPool, RemotingError

log = logging.getLogger("bench_election")

Json = dict[str, Any]
VICTIM = "broker-a"
POLL_INTERVAL = 0.1
METHOD = ("Per run: wait until both replicas of broker-a are in the controller's sync-state set; create the fresh "
          "policies, and SIGKILL the master once they are Ready (one list call per 100 ms). missing_at_election = "
          "fresh groups the new master lacked when it was elected. election_s = until the name server lists the "
          "other replica as master (polled every 50 ms). From the election, polled every 100 ms: "
          "groups_on_new_master_s = until the new master holds every policy's group with its retryMaxTimes (our "
          "admin client), status_verified_s = until every policy's status names the new master Applied (one list "
          "call). Then the killed replica is restarted: old_master_reported_as_slave_s = until every policy lists it "
          "as a slave holding the config.")


def groups_on(addr: str, namesrv: str, groups: set[str]) -> bool:
    """Whether the broker at `addr` holds every one of `groups` with the policies' retryMaxTimes."""

    async def read() -> bool:
        async with ConnectionPool(request_timeout=10.0) as pool:
            try:
                found = await Admin(pool, [namesrv]).get_all_subscription_groups(addr)
            except (RemotingError, OSError):
                return False  # a replica changing role may refuse requests for a moment
        return all(group in found and found[group].retry_max_times == MAX_RETRIES for group in groups)

    return asyncio.run(read())


def statuses_name(policies: Policies, master: str) -> bool:
    """Whether every policy reports `master` as broker-a's master, Applied."""
    items, _ = policies.list()
    return all(any(broker.get("name") == VICTIM and broker.get("address") == master and broker.get("state") == "Applied"
                   for broker in item.get("status", {}).get("brokers", [])) for item in items)


def slaves_hold(policies: Policies, slave: str) -> bool:
    """Whether every policy lists `slave` as a slave holding the config."""
    items, _ = policies.list()
    return all(any(entry.get("address") == slave and entry.get("holdsConfig") is True
                   for broker in item.get("status", {}).get("brokers", []) for entry in broker.get("slaves", []))
               for item in items)


def held_on(addr: str, namesrv: str, groups: set[str]) -> set[str]:
    """Which of `groups` the broker at `addr` holds now."""

    async def read() -> set[str]:
        async with ConnectionPool(request_timeout=10.0) as pool:
            return groups & set(await Admin(pool, [namesrv]).get_all_subscription_groups(addr))

    return asyncio.run(read())


def one_election(cluster: RocketMQCluster, policies: Policies, operator: Operator, groups: set[str], *,
                 fresh: dict[str, str], timeout: float) -> Json:
    cluster.wait_in_sync(VICTIM)
    for name, group in fresh.items():
        policies.create(name, group)
    wait_until(lambda: sum(policies.ready(p) for p in policies.list()[0] if p["metadata"]["name"] in fresh)
               == len(fresh), timeout=timeout, interval=POLL_INTERVAL, process=operator.process,
               what=f"{len(fresh)} fresh policies Ready")
    groups = groups | set(fresh.values())
    victim = cluster.master(VICTIM)
    if victim is None:
        raise RuntimeError(f"{VICTIM} has no master before the kill")
    successor = next(node for node in cluster.replicas(VICTIM) if node is not victim)
    log.info("killing %s (%s), the master of %s", victim.name, victim.addr, VICTIM)
    killed = time.monotonic()
    cluster.kill(victim.name)
    wait_until(lambda: cluster.registered_masters().get(VICTIM) == successor.addr, timeout=timeout,
               interval=POLL_INTERVAL / 2, what=f"{successor.name} elected")
    elected = time.monotonic()
    missing = len(set(fresh.values()) - held_on(successor.addr, cluster.namesrv_addr, set(fresh.values())))
    marks: dict[str, float] = {}

    def both() -> bool:
        now = time.monotonic()
        if "groups" not in marks and groups_on(successor.addr, cluster.namesrv_addr, groups):
            marks["groups"] = now
        if "status" not in marks and statuses_name(policies, successor.addr):
            marks["status"] = now
        return "groups" in marks and "status" in marks

    wait_until(both, timeout=timeout, interval=POLL_INTERVAL, process=operator.process,
               what=f"all {len(groups)} groups on {successor.name} and every status naming it")
    log.info("%s elected after %.1f s; groups there %.1f s and statuses %.1f s after the election", successor.name,
             elected - killed, marks["groups"] - elected, marks["status"] - elected)
    cluster.restart(victim.name)
    rejoined = time.monotonic()
    wait_until(lambda: slaves_hold(policies, victim.addr), timeout=timeout, interval=POLL_INTERVAL * 5,
               process=operator.process, what=f"{victim.name} reported as a slave holding the config")
    return {"killed": victim.name, "elected": successor.name, "election_s": round(elected - killed, 3),
            "fresh_policies": len(fresh), "missing_at_election": missing,
            "groups_on_new_master_s": round(marks["groups"] - elected, 3),
            "status_verified_s": round(marks["status"] - elected, 3),
            "old_master_reported_as_slave_s": round(time.monotonic() - rejoined, 3)}


@click.command()
@click.option("--policies", "size", default=100, show_default=True, type=click.IntRange(1),
              help="RetryPolicies Ready before the first kill.")
@click.option("--runs", default=3, show_default=True, type=click.IntRange(1), help="Kills of broker-a's master.")
@click.option("--fresh", default=20, show_default=True, type=click.IntRange(0),
              help="Policies created just before each kill.")
@click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(min=1),
              help="Bound of each wait, in seconds.")
def main(*, size: int, runs: int, fresh: int, timeout: float) -> None:
    """Time from a master's SIGKILL to its replica's election, and from the election to the config verified there."""
    configure_logging()
    workdir = Path(tempfile.mkdtemp(prefix="bench-election-"))
    plane = ControlPlane(workdir / "kubernetes")
    cluster = RocketMQCluster(versions.ROCKETMQ_5, workdir / "rocketmq", topology=Topology.CONTROLLER)
    load = os.getloadavg()[0]
    run_id = uuid.uuid4().hex[:6]
    namespace = f"bench-election-{run_id}"
    results: list[Json] = []
    try:
        log.info("starting the control plane and RocketMQ %s in controller mode", cluster.version)
        start_bed(plane, cluster)
        policies = Policies(admin_client(plane.kubeconfig, 9), namespace, cluster.namesrv_addr, cluster.broker_count)
        operator = Operator.start(plane, namespace, sweep_interval=DEFAULT_SWEEP_INTERVAL, workdir=workdir,
                                  profile=None, memory=None, source=None)
        try:
            groups = {f"p-{index:05d}": f"bench_{run_id}_{index:05d}" for index in range(size)}
            convergence = converge(policies, operator, groups, workers=8, timeout=timeout)
            log.info("%d policies Ready after %.1f s", size, convergence["seconds"])
            for run in range(runs):
                log.info("run %d of %d", run + 1, runs)
                new = {f"r{run}-{index:03d}": f"bench_{run_id}_r{run}_{index:03d}" for index in range(fresh)}
                results.append(one_election(cluster, policies, operator, set(groups.values()), fresh=new,
                                            timeout=timeout))
                groups |= new
        finally:
            operator.stop()
    finally:
        cluster.stop()
        plane.stop()
    shutil.rmtree(workdir)  # kept when anything failed: its logs are named in the error
    click.echo(json.dumps({
        "benchmark": "election",
        "machine": machine(load),
        "versions": software(cluster.version, kubernetes=versions.KUBERNETES),
        "settings": {"topology": str(Topology.CONTROLLER), "broker_names": cluster.broker_count, "policies": size,
                     "fresh_per_run": fresh, "runs": runs, "sweep_interval_s": DEFAULT_SWEEP_INTERVAL,
                     "service_account": ACCOUNT},
        "method": METHOD,
        "runs": results,
    }, indent=2))


if __name__ == "__main__":
    main()
