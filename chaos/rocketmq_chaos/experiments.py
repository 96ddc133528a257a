"""Experiments on the local bed: a fault while probes run, then a verdict over what the journal recorded.

Each experiment uses a topic and consumer groups of its own, so runs never see each other's messages.
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from rocketmq_retry.bed.rocketmq import RocketMQCluster
from rocketmq_retry.remoting import (
    Admin,
    BrokerError,
    ConnectionFailed,
    ConnectionPool,
    Message,
    Producer,
    PullConsumer,
    RemotingTimeout,
    SendFailed,
    SendResult,
    SubscriptionGroupConfig,
    TopicConfig,
)

from .injectors import NAME_SERVER, LocalInjector
from .java_probes import ConsumeMode, JavaProbes
from .journal import HandBack, Journal
from .probes import FailingConsumer, ProducerProbe, drain
from .verdicts import (
    ConsumptionVerdict,
    DeliveryVerdict,
    LadderVerdict,
    judge_broadcast,
    judge_delivery,
    judge_ladder,
    judge_orderly,
)

ROUTE_WAIT = 60.0  # a new topic reaches the name server with the brokers' next registration
JVM_START = 240.0  # a cold JVM client on the busy 2-core machine
Client = Literal["python", "java"]
LoadFault = Literal["kill", "pause", "kill-name-server"]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def create_topic(admin: Admin, cluster: RocketMQCluster, *, queues: int) -> str:
    """A new topic on every master, returned once the name server routes it to all of them."""
    topic = unique("chaos")
    config = TopicConfig(topic, read_queue_nums=queues, write_queue_nums=queues)
    await asyncio.gather(*(admin.create_or_update_topic(b.addr, config) for b in cluster.brokers))
    await routed_to_every_master(admin, cluster, topic)
    return topic


async def routed_to_every_master(admin: Admin, cluster: RocketMQCluster, topic: str) -> None:
    wanted = {b.name for b in cluster.brokers}
    async with asyncio.timeout(ROUTE_WAIT):
        while True:
            with contextlib.suppress(BrokerError, ConnectionFailed, RemotingTimeout):
                if {q.broker_name for q in (await admin.topic_route(topic)).queues} == wanted:
                    return
            await asyncio.sleep(0.5)


@dataclass(frozen=True)
class FaultUnderLoad:
    """A fault while a producer sends at `rate` msg/s; the fault ends after the load so every message can be read.

    `kill` SIGKILLs one master (restarted with its store), `pause` SIGSTOPs it (SIGCONT), `kill-name-server` SIGKILLs
    the name server (restarted; brokers re-register on their next heartbeat). A paused broker holds every call until
    the send timeout, which the official client's default cannot retry within, so failed sends are reported there
    but not held against the run; the other faults allow none. Loss of an acknowledged message fails every run.
    """

    rate: float = 200.0
    duration: float = 20.0
    fault: LoadFault = "kill"
    fault_at: float = 5.0  # seconds after the first message is stored
    victim: str | None = None  # default: the last master
    retries: int = 2  # retryTimesWhenSendFailed of our producer; 0 shows what applications without retries see
    latency_fault_enabled: bool = False
    client: Client = "python"  # "java": the official DefaultMQProducer with its default settings

    @property
    def allowed_failed_sends(self) -> int | None:
        return None if self.fault == "pause" else 0


_FAULT_AND_RECOVERY: Final = {"kill": ("kill", "restart"), "pause": ("pause", "resume"),
                              "kill-name-server": ("kill", "restart")}


async def fault_under_load(cluster: RocketMQCluster, journal: Journal, plan: FaultUnderLoad) -> DeliveryVerdict:
    target = NAME_SERVER if plan.fault == "kill-name-server" else plan.victim or cluster.brokers[-1].name
    injector = LocalInjector(cluster, journal, allowed={target})
    inject, recover = _FAULT_AND_RECOVERY[plan.fault]
    async with ConnectionPool(connect_timeout=1.0, request_timeout=5.0) as pool:
        admin = Admin(pool, [cluster.namesrv_addr])
        topic = await create_topic(admin, cluster, queues=2)
        sending: Coroutine[Any, Any, object]
        if plan.client == "java":
            sending = JavaProbes.of(cluster).produce(journal, topic, rate=plan.rate, duration=plan.duration)
        else:
            producer = Producer(pool, [cluster.namesrv_addr], retry_times_when_send_failed=plan.retries,
                                latency_fault_enabled=plan.latency_fault_enabled)
            sending = ProducerProbe(producer, topic, journal, rate=plan.rate).run(plan.duration)
        load = asyncio.create_task(sending)
        await _first_message_stored(admin, cluster, topic, load)
        await asyncio.sleep(plan.fault_at)
        await getattr(injector, inject)(target)
        await load
        await getattr(injector, recover)(target)
        await routed_to_every_master(admin, cluster, topic)  # a restarted name server knows routes only anew
        await drain(PullConsumer(pool, [cluster.namesrv_addr], unique("chaos_drain")), topic, journal)
    return judge_delivery(journal, max_failed_sends=plan.allowed_failed_sends)


async def _first_message_stored(admin: Admin, cluster: RocketMQCluster, topic: str, load: asyncio.Task[Any]) -> None:
    """The load has begun (a JVM client takes seconds to start sending): some queue of `topic` holds a message."""
    async with asyncio.timeout(ROUTE_WAIT + JVM_START):
        while not load.done():
            offsets = await asyncio.gather(*(admin.max_offset(b.addr, topic, queue)
                                             for b in cluster.brokers for queue in range(2)))
            if any(offsets):
                return
            await asyncio.sleep(0.05)
    await load  # it ended before storing anything: its error, if any, is the news


@dataclass(frozen=True)
class RetryLadder:
    """Fail `messages` messages every time; each must climb the ladder and be dead-lettered once."""

    expected_delays_ms: Sequence[int]
    messages: int = 3
    group: str | None = None  # a group whose retryMaxTimes someone (the operator) already set
    kill_mid_ladder: bool = False  # SIGKILL the broker holding the retries after the first retry, then restart
    within: float = 180.0


async def retry_ladder(cluster: RocketMQCluster, journal: Journal, plan: RetryLadder) -> LadderVerdict:
    group = plan.group or unique("chaos_ladder")
    async with ConnectionPool(connect_timeout=1.0, request_timeout=5.0) as pool:
        admin = Admin(pool, [cluster.namesrv_addr])
        if plan.group is None:
            for broker in cluster.brokers:
                await admin.update_subscription_group(
                    broker.addr, SubscriptionGroupConfig(group, retry_max_times=len(plan.expected_delays_ms)))
        topic = await create_topic(admin, cluster, queues=1)
        producer = Producer(pool, [cluster.namesrv_addr])
        for index in range(plan.messages):
            await send_once_routed(producer, Message(topic, f"ladder-{index}".encode()))
        consumer = PullConsumer(pool, [cluster.namesrv_addr], group)  # no client limit: the group's applies
        failing = asyncio.create_task(FailingConsumer(consumer, topic, journal).run(plan.messages,
                                                                                    within=plan.within))
        if plan.kill_mid_ladder:
            await _kill_after_first_retries(cluster, journal, plan.messages, failing)
        await failing
    return judge_ladder(journal, plan.expected_delays_ms, strict=not plan.kill_mid_ladder)


async def send_once_routed(producer: Producer, message: Message, *, within: float = ROUTE_WAIT) -> SendResult:
    """A new topic reaches the name server asynchronously; retry its first send until the route is there."""
    async with asyncio.timeout(within):
        while True:
            try:
                return await producer.send(message)
            except SendFailed:
                await asyncio.sleep(0.5)


async def _kill_after_first_retries(cluster: RocketMQCluster, journal: Journal, messages: int,
                                    failing: asyncio.Task[None]) -> None:
    """Once every message was handed back at least twice, kill the first master for 3 s."""
    while sum(isinstance(e, HandBack) and e.reconsume_times >= 1 for e in journal.events) < messages:
        if failing.done():
            return
        await asyncio.sleep(0.1)
    injector = LocalInjector(cluster, journal)
    victim = cluster.brokers[0].name
    await injector.kill(victim)
    await asyncio.sleep(3.0)
    await injector.restart(victim)


@dataclass(frozen=True)
class FailingJavaConsumer:
    """The official push consumer, failing every delivery of one message, in `mode` (orderly or broadcast)."""

    mode: ConsumeMode
    duration: float = 10.0
    quiet: float = 5.0  # broadcast: the silence after the one delivery that shows no retry came


async def topic_with_one_message(cluster: RocketMQCluster) -> str:
    """A new topic, one queue per master, holding one message sent by our producer (no JVM for the set-up)."""
    async with ConnectionPool(connect_timeout=1.0, request_timeout=5.0) as pool:
        topic = await create_topic(Admin(pool, [cluster.namesrv_addr]), cluster, queues=1)
        await send_once_routed(Producer(pool, [cluster.namesrv_addr]), Message(topic, b"fail me"))
    return topic


async def java_consumer_retries(cluster: RocketMQCluster, journal: Journal,
                                plan: FailingJavaConsumer) -> ConsumptionVerdict:
    topic = await topic_with_one_message(cluster)
    await JavaProbes.of(cluster).consume(journal, topic, unique(f"chaos_{plan.mode}"), duration=plan.duration,
                                         mode=plan.mode)
    if plan.mode is ConsumeMode.ORDERLY:
        return judge_orderly(journal, topic)
    if plan.mode is ConsumeMode.BROADCAST:
        return judge_broadcast(journal, topic, ended=time.time(), quiet_s=plan.quiet)
    raise ValueError(f"concurrent consumers are judged by the retry ladder (retry_ladder), not by {plan.mode}")
