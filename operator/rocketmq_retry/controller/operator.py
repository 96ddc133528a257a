"""The running operator, built in one typed place at start-up: one API client, one admin pool, one status memory, one
control loop with both kinds on it, and the master watch.

kopf's registrations (controller/handlers.py) build it once kopf hands them its indexes, and only feed it events;
everything else happens here.
"""

import asyncio
from dataclasses import dataclass

from rocketmq_retry.controller import DLQ_KIND, DLQ_PLURAL, KIND
from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.dead_letters import DeadLetterQueues
from rocketmq_retry.controller.kubeapi import KindSink, KubeApi
from rocketmq_retry.controller.loop import ControlLoop, stop_quietly
from rocketmq_retry.controller.masters import MasterWatch
from rocketmq_retry.controller.metrics import Metrics
from rocketmq_retry.controller.peering import PeeringGate
from rocketmq_retry.controller.policies import RetryPolicies
from rocketmq_retry.controller.publisher import StatusMemory
from rocketmq_retry.controller.records import Claims
from rocketmq_retry.reconcile.clients import Admins


@dataclass(frozen=True)
class Operator:
    config: OperatorConfig
    kube: KubeApi
    admins: Admins
    policies: RetryPolicies
    dead_letters: DeadLetterQueues
    loop: ControlLoop
    watch: MasterWatch

    @classmethod
    def build(cls, config: OperatorConfig, metrics: Metrics, policy_claims: Claims,
              dead_letter_claims: Claims) -> "Operator":
        kube = KubeApi.from_environment(timeout=config.kube_timeout, calls_at_once=config.kube_calls_at_once)
        admins = Admins(config.broker_timeout)
        memory = StatusMemory()
        policies = RetryPolicies(config, policy_claims, admins=admins.admin, secrets=kube, sink=kube, memory=memory,
                                 metrics=metrics)
        dead_letters = DeadLetterQueues(config, dead_letter_claims, admins=admins.admin, secrets=kube,
                                        sink=KindSink(kube, DLQ_PLURAL, DLQ_KIND), metrics=metrics)
        leads = PeeringGate(config.peering, kube).leads if config.peering is not None else None
        loop = ControlLoop(config, [policies, dead_letters], memory, leads=leads)
        dead_letters.wake = lambda uid: loop.wake(DLQ_KIND, uid)
        watch = MasterWatch(admins.admin, policies.clusters, lambda clusters: loop.resync(KIND, clusters),
                            call_timeout=config.broker_timeout, interval=config.master_check_interval)
        return cls(config, kube, admins, policies, dead_letters, loop, watch)

    async def run(self) -> None:
        """The loop and the master watch until cancelled; then every redrive stops and every connection closes (the
        loop's last status writes first)."""
        tasks = [asyncio.create_task(self.loop.run(), name="rocketmq-retry control loop"),
                 asyncio.create_task(self.watch.run_forever(), name="rocketmq-retry master watch")]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                await stop_quietly(task)
            await self.dead_letters.close()
            await self.admins.close()
            await self.kube.close()
