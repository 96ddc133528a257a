"""Experiments: a fault while probes run, then a verdict over what the journal recorded.

They see the cluster as a `Topology` and hurt it through the `Injector` their caller gives them, so the same
experiment runs on the local bed (the lab's LocalInjector) and on broker pods (PodInjector, from a Job in the cluster);
only the official Java probes need the local bed's jars, and the lab passes them in (`JavaProbes`). Each experiment
uses a topic and consumer groups of its own, so runs never see each other's messages.
"""

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

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
    SendStatus,
    SubscriptionGroupConfig,
    TopicConfig,
    retry_topic,
)

from .injectors import NAME_SERVER, Injector
from .java_probes import ConsumeMode, ConsumerSettings, Failure, JavaProbes, resends_cleaned_messages
from .journal import HandBack, Journal, SendMode
from .probes import FailingConsumer, ProducerProbe, dead_letters_reach, drain, drain_dead_letters
from .topology import BrokerEndpoint, Topology, masters_of
from .verdicts import (
    ConsumptionVerdict,
    DeliveryVerdict,
    LadderVerdict,
    OverrunVerdict,
    judge_broadcast,
    judge_delivery,
    judge_ladder,
    judge_orderly,
    judge_overrun,
)

log = logging.getLogger(__name__)
LOAD_RUNNING: Final = "load running, the first message is stored in topic"
ROUTE_WAIT = 60.0  # a new topic reaches the name server with the brokers' next registration
STEADY_STATE_TOPIC: Final = "chaos_steady_state"  # where `masters_store_ok` sends
JVM_START = 240.0  # a cold JVM client on the busy 2-core machine
Client = Literal["python", "java"]
LoadFault = Literal["kill", "pause", "kill-name-server", "external"]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def create_topic(admin: Admin, cluster: Topology, *, queues: int) -> str:
    """A new topic on every master, returned once the name server routes it to all of them."""
    topic = unique("chaos")
    await place_routed_topic(admin, cluster, topic, queues=queues)
    return topic


async def place_routed_topic(admin: Admin, cluster: Topology, topic: str, *, queues: int) -> None:
    """`topic` on every master, once the name server routes it to all of them."""
    await place_topic(admin, cluster.brokers, topic, queues=queues)
    await routed_to_every_master(admin, cluster, topic)


async def place_topic(admin: Admin, brokers: Sequence[BrokerEndpoint], topic: str, *, queues: int) -> None:
    config = TopicConfig(topic, read_queue_nums=queues, write_queue_nums=queues)
    await asyncio.gather(*(admin.create_or_update_topic(b.addr, config) for b in brokers))


async def routed_to_every_master(admin: Admin, cluster: Topology, topic: str) -> None:
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

    On the local bed `kill` SIGKILLs one master (restarted with its store), `pause` SIGSTOPs it (SIGCONT),
    `kill-name-server` SIGKILLs the name server (restarted; brokers re-register on their next heartbeat); in a
    cluster `kill` deletes the master's pod and its replacement is waited for. `external`: the run injects nothing,
    someone else does (the kind lab pauses a broker's node). A paused broker holds every call until the send
    timeout, which the official client's default cannot retry within, so failed sends are reported there (and under
    an external fault) but not held against the run; the other faults allow none. Loss of an acknowledged message
    fails every run, except, with `store_survives` off (a pod whose store is an emptyDir), what the victim
    acknowledged before it came back empty: that is counted apart (DeliveryVerdict.lost_with_store).

    The victim may be any part the injector allows: a slave (`broker-b-slave` on the local bed) as well as a master.
    Killing a SYNC_MASTER's slave leaves its master storing every message but answering SLAVE_NOT_AVAILABLE; with
    `retry_another_broker_when_not_store_ok` both producers re-send such a message to another broker, which stores
    another copy: duplicates, counted (DeliveryVerdict.resend_duplicates), and held against the run only beyond
    `max_duplicates`. The load starts once every master answers SEND_OK (`masters_store_ok`).
    """

    rate: float = 200.0
    duration: float = 20.0
    fault: LoadFault = "kill"
    fault_at: float = 5.0  # seconds after the first message is stored
    victim: str | None = None  # default: the last master; any part the injector allows (a slave too)
    retries: int = 2  # retryTimesWhenSendFailed of our producer; 0 shows what applications without retries see
    latency_fault_enabled: bool = False
    client: Client = "python"  # "java": the official DefaultMQProducer with its default settings
    # The Java producer's send call: async and oneway sends are what applications use for speed, and what they lose
    # under the fault is counted, not held against the run (failed sends allowed, oneway losses reported).
    send_mode: SendMode = "sync"
    store_survives: bool = True  # False: the killed broker comes back empty (a pod with an emptyDir store)
    # Both producers' retryAnotherBrokerWhenNotStoreOK: a sync send answered with a status other than SEND_OK is sent
    # again to another broker, within the same 1 + retries attempts.
    retry_another_broker_when_not_store_ok: bool = False
    max_duplicates: int | None = None  # duplicate first deliveries allowed; None: counted and reported only
    # A failed send whose message arrived all the same is counted, not held against the run: a send in flight when a
    # SYNC_MASTER's slave dies waits the master's slaveTimeout (3 s), the client's whole default send timeout.
    allow_failed_but_arrived: bool = False

    def __post_init__(self) -> None:
        if self.send_mode != "sync" and self.client != "java":
            raise ValueError(f"{self.send_mode} sends are the official producer's: client must be java")

    @property
    def allowed_failed_sends(self) -> int | None:
        return None if self.fault in ("pause", "external") or self.send_mode != "sync" else 0

    def target(self, cluster: Topology) -> str:
        """What the fault hits: the name server, or the victim (default: the last master)."""
        return NAME_SERVER if self.fault == "kill-name-server" else self.victim or cluster.brokers[-1].name


Action = Callable[[str], Awaitable[None]]


def _fault_and_recovery(injector: Injector | None, fault: LoadFault) -> tuple[Action, Action] | None:
    if fault == "external":
        return None
    if injector is None:
        raise ValueError(f"the fault {fault!r} needs an injector")
    match fault:
        case "kill" | "kill-name-server":
            return injector.kill, injector.restart
        case "pause":
            return injector.pause, injector.resume


async def fault_under_load(cluster: Topology, journal: Journal, plan: FaultUnderLoad,
                           injector: Injector | None, java: JavaProbes | None = None) -> DeliveryVerdict:
    """`injector` must record into `journal` and allow `plan.target(cluster)`; an `external` fault needs none. `java`
    is the official producer for `plan.client == "java"`."""
    target = plan.target(cluster)
    actions = _fault_and_recovery(injector, plan.fault)
    async with ConnectionPool(connect_timeout=1.0, request_timeout=5.0) as pool:
        admin = Admin(pool, [cluster.namesrv_addr])
        topic = await create_topic(admin, cluster, queues=2)
        await masters_store_ok(pool, cluster)
        sending: Coroutine[Any, Any, object]
        if plan.client == "java":
            if java is None:
                raise ValueError("the Java probes run on the local bed only (they need its RocketMQ jars)")
            sending = java.produce(journal, topic, rate=plan.rate, duration=plan.duration, mode=plan.send_mode,
                                   retry_another_broker_when_not_store_ok=plan.retry_another_broker_when_not_store_ok)
        else:
            producer = Producer(pool, [cluster.namesrv_addr], retry_times_when_send_failed=plan.retries,
                                latency_fault_enabled=plan.latency_fault_enabled,
                                retry_another_broker_when_not_store_ok=plan.retry_another_broker_when_not_store_ok)
            sending = ProducerProbe(producer, topic, journal, rate=plan.rate).run(plan.duration)
        load = asyncio.create_task(sending)
        await _first_message_stored(admin, cluster, topic, load)
        log.info("%s: %s", LOAD_RUNNING, topic)  # what an external fault waits for (the kind lab reads the log)
        if actions is None:
            await load
        else:
            inject, recover = actions
            await asyncio.sleep(plan.fault_at)
            await inject(target)
            await load
            await recover(target)  # the victim's address is current again in `cluster`
        # The topic on every master there is now: a victim back without its store lost it, and a replica elected in
        # its place (controller mode) lacks it unless it copied its master's topics (every 10 s) before the kill; a
        # master without the topic refuses to read the messages it holds.
        await place_topic(admin, masters_of(await admin.cluster_info()), topic, queues=2)
        await routed_to_every_master(admin, cluster, topic)  # a restarted name server knows routes only anew
        await drain(PullConsumer(pool, [cluster.namesrv_addr], unique("chaos_drain")), topic, journal)
    return judge_delivery(journal, max_failed_sends=plan.allowed_failed_sends,
                          store_lost_by=None if plan.store_survives else target, max_duplicates=plan.max_duplicates,
                          allow_failed_but_arrived=plan.allow_failed_but_arrived)


async def masters_store_ok(pool: ConnectionPool, cluster: Topology, *, within: float = ROUTE_WAIT) -> None:
    """The steady state a load starts from: every master answers a send with SEND_OK (to a topic of its own, so the
    run's topic holds the run's messages only).

    A SYNC_MASTER answers SLAVE_NOT_AVAILABLE while no slave is connected, and FLUSH_SLAVE_TIMEOUT after 3 s while
    its slave has not caught up: on 4.9.7 a slave connects within ~5 s of its own or its master's start (its HA client
    tries every 5 s) and reports its offset 5 s later (haSendHeartbeatInterval). A run begun meanwhile would count
    those answers against its fault. Masters without slaves answer SEND_OK at once.
    """
    admin = Admin(pool, [cluster.namesrv_addr])
    await place_routed_topic(admin, cluster, STEADY_STATE_TOPIC, queues=1)
    producer = Producer(pool, [cluster.namesrv_addr], retry_times_when_send_failed=0)
    waiting = {b.name for b in cluster.brokers}
    last: dict[str, str] = {}
    try:
        async with asyncio.timeout(within):
            while waiting:
                try:
                    result = await producer.send(Message(STEADY_STATE_TOPIC, b"steady state"))
                except SendFailed as failed:
                    last |= {a.broker_name: a.error or "" for a in failed.attempts}
                    await asyncio.sleep(0.5)
                    continue
                broker = result.receipt.queue.broker_name
                last[broker] = result.status.value
                if result.status is SendStatus.SEND_OK:
                    waiting.discard(broker)
                else:
                    await asyncio.sleep(0.5)
    except TimeoutError:
        raise TimeoutError(f"masters {sorted(waiting)} answered no send with SEND_OK within {within:g} s (last "
                           f"answers: {last})") from None


async def _first_message_stored(admin: Admin, cluster: Topology, topic: str, load: asyncio.Task[Any]) -> None:
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
    kill_mid_ladder: bool = False  # kill the first master after the first retry, restart it `down_for` s later
    down_for: float = 3.0  # long enough, with a slave, for clients to turn to the slave and to the other masters
    within: float = 180.0


async def retry_ladder(cluster: Topology, journal: Journal, plan: RetryLadder,
                       injector: Injector | None = None) -> LadderVerdict:
    """`injector` (recording into `journal`, allowing the first master) is needed for `kill_mid_ladder` only."""
    if plan.kill_mid_ladder and injector is None:
        raise ValueError("killing a broker mid-ladder needs an injector")
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
        failing = asyncio.create_task(FailingConsumer(consumer, topic, journal).run(
            plan.messages, within=plan.within, settle=_settle(plan.expected_delays_ms) if plan.kill_mid_ladder else 0))
        if plan.kill_mid_ladder and injector is not None:
            await _kill_after_first_retries(cluster, journal, plan.messages, failing, injector, down_for=plan.down_for)
        try:
            await failing
        except TimeoutError:  # the verdict says which message did not get there, and how far it climbed
            log.warning("not every failing message reached the dead-letter queue within %g s", plan.within)
    return judge_ladder(journal, plan.expected_delays_ms, strict=not plan.kill_mid_ladder)


def _settle(expected_delays_ms: Sequence[int]) -> float:
    """How long to read on after the last first dead letter when a broker was killed: a retry the restarted broker
    stored again climbs the rest of the ladder behind the first copy, at most the whole ladder late."""
    return sum(expected_delays_ms) / 1000 + 5.0


async def send_once_routed(producer: Producer, message: Message, *, within: float = ROUTE_WAIT) -> SendResult:
    """A new topic reaches the name server asynchronously; retry its first send until the route is there."""
    async with asyncio.timeout(within):
        while True:
            try:
                return await producer.send(message)
            except SendFailed:
                await asyncio.sleep(0.5)


async def _kill_after_first_retries(cluster: Topology, journal: Journal, messages: int,
                                    failing: asyncio.Task[None], injector: Injector, *, down_for: float) -> None:
    """Once every message was handed back at least twice, kill the first master for `down_for` seconds."""
    while sum(isinstance(e, HandBack) and e.reconsume_times >= 1 for e in journal.events) < messages:
        if failing.done():
            return
        await asyncio.sleep(0.1)
    await _kill_first_master(cluster, injector, down_for=down_for)


@dataclass(frozen=True)
class JavaRetryLadder:
    """The official push consumer fails one message each way in `failures`; with its own limit of
    len(expected_delays_ms) retries, each must climb the ladder and be dead-lettered exactly once."""

    expected_delays_ms: Sequence[int]
    failures: Sequence[Failure] = (Failure.LATER, Failure.THROW, Failure.NULL)
    within: float = 120.0  # of the consumer's run, JVM start not counted
    kill_mid_ladder: bool = False  # kill the first master once every message was retried, as RetryLadder does
    down_for: float = 3.0


async def java_retry_ladder(cluster: Topology, journal: Journal, plan: JavaRetryLadder,
                            java: JavaProbes, injector: Injector | None = None) -> LadderVerdict:
    """Judged by the ladder as our own probes are: a throwing listener, one returning null and one returning
    RECONSUME_LATER must all be sent back by the client and retried by the broker on the same steps.

    With `kill_mid_ladder` (`injector` allowing the first master), the first master dies once the group's retry
    topic holds a retry of every message: the probe's journal is read only when it stops, so the brokers tell."""
    if plan.kill_mid_ladder and injector is None:
        raise ValueError("killing a broker mid-ladder needs an injector")
    settings = ConsumerSettings(max_reconsume_times=len(plan.expected_delays_ms))
    fault = None
    if plan.kill_mid_ladder and injector is not None:
        fault = functools.partial(_kill_once_retried, cluster, len(plan.failures), injector, down_for=plan.down_for,
                                  within=plan.within + JVM_START)
    await _java_failures(cluster, journal, java, plan.failures, settings, dead_letters=len(plan.failures),
                         within=plan.within, fault=fault,
                         settle=_settle(plan.expected_delays_ms) if plan.kill_mid_ladder else 0.0)
    return judge_ladder(journal, plan.expected_delays_ms, strict=not plan.kill_mid_ladder)


async def _kill_first_master(cluster: Topology, injector: Injector, *, down_for: float) -> None:
    """SIGKILL the first master (in controller mode, whichever replica leads its broker name) and restart it
    `down_for` seconds later."""
    victim = cluster.brokers[0].name
    await injector.kill(victim)
    await asyncio.sleep(down_for)
    await injector.restart(victim)


async def _kill_once_retried(cluster: Topology, messages: int, injector: Injector, admin: Admin, group: str, *,
                             down_for: float, within: float) -> None:
    """Once the masters' queues of `group`'s retry topic hold `messages` retries, kill the first master for
    `down_for` seconds; no kill when they do not within `within` seconds (the verdict tells what went wrong)."""
    topic = retry_topic(group)
    try:
        async with asyncio.timeout(within):
            while True:
                stored = await asyncio.gather(*(admin.max_offset(b.addr, topic, 0) for b in cluster.brokers))
                if sum(stored) >= messages:
                    break
                await asyncio.sleep(0.2)
    except TimeoutError:
        log.warning("%s never held a retry of each of the %d messages: no broker was killed", topic, messages)
        return
    await _kill_first_master(cluster, injector, down_for=down_for)


@dataclass(frozen=True)
class JavaOverrun:
    """The official push consumer holds one message's first delivery for `overrun_s`, beyond its consumeTimeout,
    then fails it; every later delivery fails at once, and the client's limit ends each copy's climb."""

    consume_timeout_minutes: int = 1  # the client's least: it counts whole minutes
    # Past the cleaner's second run (2 x consumeTimeout after the consumer's start), the first that finds a delivery
    # begun in the consumer's first seconds overrun.
    overrun_s: float = 135.0
    # The run goes on this long after the hold: a copy sent back by the late failure climbs to the DLQ within 2 s here,
    # so its absence is seen too. The run is not cut short at the dead letters: that would cut the hold short.
    quiet_s: float = 20.0
    max_reconsume_times: int = 1


async def java_overrun(cluster: Topology, journal: Journal, plan: JavaOverrun, java: JavaProbes) -> OverrunVerdict:
    settings = ConsumerSettings(max_reconsume_times=plan.max_reconsume_times,
                                consume_timeout_minutes=plan.consume_timeout_minutes, overrun_s=plan.overrun_s)
    async with ConnectionPool(connect_timeout=1.0, request_timeout=5.0) as pool:
        topic, group = await _failing_messages(pool, cluster, [Failure.OVERRUN])
        await java.consume(journal, topic, group, settings, duration=plan.overrun_s + plan.quiet_s)
        await drain_dead_letters(PullConsumer(pool, [cluster.namesrv_addr], group), journal)
    return judge_overrun(journal, consume_timeout_s=plan.consume_timeout_minutes * 60, overrun_s=plan.overrun_s,
                         late_failure_resent=resends_cleaned_messages(java.version))


async def _java_failures(cluster: Topology, journal: Journal, java: JavaProbes, failures: Sequence[Failure],
                         settings: ConsumerSettings, *, dead_letters: int, within: float,
                         fault: Callable[[Admin, str], Awaitable[None]] | None = None, settle: float = 0.0) -> None:
    """The official consumer of a new group fails one message per failure until `dead_letters` reached the DLQ or
    `within` passed (then the verdict says what was missing), and goes on for `settle` seconds; the DLQ is read into
    the journal. `fault`, given the admin and the group, runs while the consumer does."""
    async with ConnectionPool(connect_timeout=1.0, request_timeout=5.0) as pool:
        topic, group = await _failing_messages(pool, cluster, failures)
        dead = PullConsumer(pool, [cluster.namesrv_addr], group)
        async with java.consuming(journal, topic, group, settings, within=within):
            if fault is not None:
                await fault(Admin(pool, [cluster.namesrv_addr]), group)
            await _until_dead_letters(dead, dead_letters, within=within + JVM_START)
            await asyncio.sleep(settle)
        await drain_dead_letters(dead, journal)


async def _failing_messages(pool: ConnectionPool, cluster: Topology, failures: Sequence[Failure]) -> tuple[str, str]:
    """A new topic holding one message per failure (its body names it), and a new group with its retry topic."""
    group = unique("chaos_java")
    admin = Admin(pool, [cluster.namesrv_addr])
    topic = await create_topic(admin, cluster, queues=1)
    # The group's retry topic, routed before its consumer starts, as the operator makes it: the broker would create
    # it at the consumer's first heartbeat, after the client's first route look-up, and the first retries would wait
    # for the client's next route poll (30 s).
    await place_routed_topic(admin, cluster, retry_topic(group), queues=1)
    producer = Producer(pool, [cluster.namesrv_addr])
    for failure in failures:
        sent = await send_once_routed(producer, Message(topic, failure.value.encode()))
        log.info("message %s is failed by %s", sent.msg_id, failure)
    return topic, group


async def _until_dead_letters(consumer: PullConsumer, count: int, *, within: float) -> None:
    """Until the group's DLQ holds `count` messages, or `within` seconds passed: what is missing then is the
    verdict's to report."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await dead_letters_reach(consumer, count)


@dataclass(frozen=True)
class FailingJavaConsumer:
    """The official push consumer, failing every delivery of one message, in `mode` (orderly or broadcast)."""

    mode: ConsumeMode
    duration: float = 10.0
    quiet: float = 5.0  # broadcast: the silence after the one delivery that shows no retry came
    # Orderly: the client's limit. A finite one ends in the DLQ and the run ends at the dead letter, within `duration`.
    max_reconsume_times: int | None = None


async def topic_with_one_message(cluster: Topology) -> str:
    """A new topic, one queue per master, holding one message sent by our producer (no JVM for the set-up)."""
    async with ConnectionPool(connect_timeout=1.0, request_timeout=5.0) as pool:
        topic = await create_topic(Admin(pool, [cluster.namesrv_addr]), cluster, queues=1)
        await send_once_routed(Producer(pool, [cluster.namesrv_addr]), Message(topic, b"fail me"))
    return topic


async def java_consumer_retries(cluster: Topology, journal: Journal, plan: FailingJavaConsumer,
                                java: JavaProbes) -> ConsumptionVerdict:
    if plan.mode is ConsumeMode.CONCURRENT:
        raise ValueError("concurrent consumers are judged by the retry ladder (java_retry_ladder)")
    topic = await topic_with_one_message(cluster)
    group = unique(f"chaos_{plan.mode}")
    async with ConnectionPool(connect_timeout=1.0, request_timeout=5.0) as pool:
        dead_letters = PullConsumer(pool, [cluster.namesrv_addr], group)
        if plan.max_reconsume_times is None:
            await java.consume(journal, topic, group, ConsumerSettings(plan.mode), duration=plan.duration)
        else:
            settings = ConsumerSettings(plan.mode, max_reconsume_times=plan.max_reconsume_times)
            async with java.consuming(journal, topic, group, settings, within=plan.duration):
                await _until_dead_letters(dead_letters, 1, within=plan.duration + JVM_START)
        ended = time.time()
        await drain_dead_letters(dead_letters, journal)
    if plan.mode is ConsumeMode.ORDERLY:
        return judge_orderly(journal, topic, max_reconsume_times=plan.max_reconsume_times)
    return judge_broadcast(journal, topic, ended=ended, quiet_s=plan.quiet)
