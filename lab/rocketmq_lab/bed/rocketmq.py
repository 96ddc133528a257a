"""A RocketMQ cluster of real processes: one name server, N broker names, and on request (5.x) the gRPC proxy.

Each broker name is a lone master, a master with a slave, or (5.x) two replicas a controller elects a master among
(bed/topology.py). Its parts are named as their processes are (`namesrv`, `broker-a`, `broker-a-slave`, …,
`controller`, `proxy`), and the same four faults
serve every caller: the chaos runner's injector, `rocketmq-retry local kill|pause|resume|restart` and the tests, so
what the tests prove about failover holds for what the demo, the experiments and a user by hand do.
"""

import contextlib
import json
import logging
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self

import yaml

from rocketmq_retry.remoting.acl import Credentials

from . import classdata, jvm, maven, paths, ports, prerequisites
from .classdata import ClassArchives
from .probe import create_topic, registered_brokers, routed_brokers
from .processes import ManagedProcess, stop_together, wait_until
from .topology import CONTROLLER, NodePlan, Topology, controller_conf, plan_nodes

log = logging.getLogger(__name__)

# Retry n waits level 3+n: 1 s, 2 s, 3 s, … — short enough for tests, distinct enough to check the ladder.
COMPRESSED_DELAY_LEVELS = "1s 1s 1s 2s 3s 4s 5s 6s 7s 8s 9s 10s 11s 12s 13s 14s 15s 16s"
DEFAULT_DELAY_LEVELS = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

# Sized for a 2-core, 24 GiB machine running two brokers, a name server, a proxy and a Kubernetes API server.
HEAP = {"namesrv": ["-Xms64m", "-Xmx192m"], "broker": ["-Xms256m", "-Xmx512m", "-XX:MaxDirectMemorySize=512m"],
         "controller": ["-Xms64m", "-Xmx192m"], "proxy": ["-Xms128m", "-Xmx384m"], "tools": ["-Xmx256m"]}
MAIN = {"namesrv": "org.apache.rocketmq.namesrv.NamesrvStartup",
         "broker": "org.apache.rocketmq.broker.BrokerStartup",
         "controller": "org.apache.rocketmq.controller.ControllerStartup",
         "proxy": "org.apache.rocketmq.proxy.ProxyStartup",
         "tools": "org.apache.rocketmq.tools.command.MQAdminStartup"}
_START_TIMEOUT = 300.0  # a cold JVM on a busy 2-core machine
_AUTH_PROVIDERS = "org.apache.rocketmq.auth.authentication.provider."  # rocketmq-auth, 5.3.0+
# The 5.x proxy creates this broadcast topic at start and checks the route three times without pausing,
# which fails while the brokers' registration is still in flight; the bed creates it first.
HEARTBEAT_SYNCER_TOPIC = "DefaultHeartBeatSyncerTopic"


NAME_SERVER: Final = "namesrv"  # the parts' names besides the brokers' own
PROXY: Final = "proxy"


class UnknownPart(ValueError):
    """A fault named a part the cluster does not have; the message lists the parts it has."""


def parse_consumer_configs(shown: str) -> dict[str, dict[str, str]]:
    """Broker name -> the group's config fields, from what `mqadmin getConsumerConfig` prints (strings)."""
    sections = re.split(r"^=+[^:\n]*:(\S+?)=+$", shown, flags=re.M)[1:]
    return {name: dict(re.findall(r"^(\w+)\s+=\s+(.*)$", text, flags=re.M))
            for name, text in zip(sections[::2], sections[1::2], strict=True)}


def parse_in_sync_replicas(shown: str) -> set[str]:
    """Addresses of the in-sync replicas, from what `mqadmin getSyncStateSet` prints for one broker name."""
    return set(re.findall(r"^InSyncReplica:.*brokerAddress='([^']+)'", shown, flags=re.M))


def _conf_text(values: dict[str, str | int | bool]) -> str:
    def render(value: str | int | bool) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    return "".join(f"{key}={render(value)}\n" for key, value in values.items())


@dataclass
class Broker:
    """One broker process: its part name, address, store and process, and the broker name and id it starts with."""

    name: str
    port: int
    home: Path
    process: ManagedProcess
    broker_name: str
    broker_id: int  # 0 master, > 0 slave, -1 assigned by the controller

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def store(self) -> Path:
        return self.home / "store"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs" / "rocketmqlogs"


@dataclass
class RocketMQCluster:
    """A RocketMQ cluster on loopback, started from the Maven Central jars of `version`.

    With `acl` (an admin account) the brokers accept only requests signed by it: ACL 1.0 on 4.x and 5.1, authentication
    (ACL 2.0) from 5.3 on. Name servers have no ACL in any line, so registration and route look-ups stay unsigned.
    """

    version: str
    workdir: Path
    broker_count: int = 2  # broker names
    topology: Topology = Topology.MASTERS
    cluster_name: str = "bed"
    delay_levels: str = COMPRESSED_DELAY_LEVELS
    auto_create_subscription_group: bool = True
    namesrv_port: int = 0
    with_proxy: bool = False
    proxy_port: int = 0  # gRPC
    proxy_remoting_port: int = 0
    nodes: list[Broker] = field(default_factory=list)  # every broker process, masters and slaves
    namesrv: ManagedProcess | None = None
    controller: ManagedProcess | None = None
    controller_port: int = 0
    proxy: ManagedProcess | None = None
    class_archives: ClassArchives | None = None
    acl: Credentials | None = None

    @property
    def is5(self) -> bool:
        return maven.is_rocketmq5(self.version)

    @property
    def namesrv_addr(self) -> str:
        return f"127.0.0.1:{self.namesrv_port}"

    @property
    def proxy_endpoint(self) -> str | None:
        """gRPC endpoint for official 5.x clients (None on 4.x, which has no proxy)."""
        return f"127.0.0.1:{self.proxy_port}" if self.proxy is not None else None

    @property
    def proxy_remoting_addr(self) -> str | None:
        """The proxy's remoting endpoint, where its gRPC clients are listed (None without a proxy)."""
        return f"127.0.0.1:{self.proxy_remoting_port}" if self.proxy is not None else None

    @property
    def rocketmq_home(self) -> Path:
        return self.workdir / "home"

    @property
    def controller_addr(self) -> str | None:
        return f"127.0.0.1:{self.controller_port}" if self.controller is not None else None

    def broker(self, name: str) -> Broker:
        """The broker process whose part name is `name`."""
        for broker in self.nodes:
            if broker.name == name:
                return broker
        raise KeyError(f"no broker {name!r} in this bed (have {[b.name for b in self.nodes]})")

    @property
    def brokers(self) -> list[Broker]:
        """The masters by configuration (brokerId 0), which is what they stay while they run; none in controller
        mode, where the name server tells which replica leads (`master`)."""
        return [broker for broker in self.nodes if broker.broker_id == 0]

    def replicas(self, broker_name: str) -> list[Broker]:
        """Every process of one broker name, master and slaves alike."""
        return [broker for broker in self.nodes if broker.broker_name == broker_name]

    @property
    def broker_names(self) -> list[str]:
        return sorted({broker.broker_name for broker in self.nodes})

    def master(self, broker_name: str) -> Broker | None:
        """The process the name server lists as `broker_name`'s master now (None while it lists none)."""
        addr = self.registered_brokers().get(broker_name, {}).get(0)
        return next((broker for broker in self.replicas(broker_name) if broker.addr == addr), None)

    # ---- lifecycle -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        """Started for the block and stopped after it, whatever happens (what test fixtures and benchmarks need)."""
        try:
            self.start()
            yield self
        finally:
            self.stop()

    def start(self) -> None:
        """Start everything and return once every broker is registered with the name server."""
        if self.acl is not None and self.with_proxy:
            raise ValueError("the bed starts the 5.x proxy only without ACL: its topic set-up is not signed")
        if self.with_proxy and not maven.has_proxy(self.version):
            why = f"Maven Central serves no rocketmq-proxy {self.version} here" if self.is5 else "4.x has no proxy"
            raise ValueError(f"the bed has no gRPC proxy for RocketMQ {self.version} ({why}): "
                             "start it without with_proxy")
        lib = maven.rocketmq_lib(self.version)
        prerequisites.require(prerequisites.JAVA)
        if self.class_archives is None:
            self.class_archives = classdata.ensure(self.version, self._record_class_archives)
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(paths.TOOLCHAINS / "rocketmq-home", self.rocketmq_home, dirs_exist_ok=True)
        if self.acl is not None:
            self._write_acl_files(self.acl)
        taken: set[int] = set()
        self.namesrv_port = ports.free_port(taken)
        taken.add(self.namesrv_port)
        ns_home = self.workdir / NAME_SERVER
        ns_conf = ns_home / "namesrv.conf"
        ns_home.mkdir(parents=True, exist_ok=True)
        ns_conf.write_text(_conf_text({"listenPort": self.namesrv_port}))
        self.namesrv = self._java("namesrv", NAME_SERVER, ns_home, lib, ["-c", str(ns_conf)])
        if self.topology.elected:
            self.controller_port = ports.free_port(taken)
            taken.add(self.controller_port)
            self.controller = self._controller_process(lib)
        for plan in plan_nodes(self.topology, self.broker_count, rocketmq5=self.is5,
                               controller_addr=self.controller_addr):
            port = ports.free_block((-2, 0, 1), taken)
            taken.update({port - 2, port, port + 1})
            home = self.workdir / plan.part
            self.nodes.append(Broker(plan.part, port, home, self._broker_process(plan, port, home, lib),
                                       plan.broker_name, plan.broker_id))
        if self.with_proxy:
            self.proxy_port = ports.free_port(taken)
            taken.add(self.proxy_port)
            self.proxy_remoting_port = ports.free_port(taken)
            taken.add(self.proxy_remoting_port)
            self.proxy = self._proxy_process(lib)
        log.info("starting RocketMQ %s (%s): name server %s, brokers %s", self.version, self.topology,
                 self.namesrv_addr, ", ".join(f"{b.name}@{b.addr}" for b in self.nodes))
        self.namesrv.start()
        wait_until(lambda: _listening(self.namesrv_port), timeout=_START_TIMEOUT, process=self.namesrv,
                   what="listening")
        if self.controller is not None:
            self.controller.start()
            wait_until(lambda: _listening(self.controller_port), timeout=_START_TIMEOUT, process=self.controller,
                       what="listening")
        for broker in self.nodes:
            broker.process.start()
        self.wait_registered([b.name for b in self.nodes])
        if self.topology.elected:
            for name in self.broker_names:
                self.wait_in_sync(name)
        if self.proxy is not None:
            self.create_topic(HEARTBEAT_SYNCER_TOPIC, queues=1)
            self.proxy.start()
            wait_until(lambda: _listening(self.proxy_port) and _listening(self.proxy_remoting_port),
                       timeout=_START_TIMEOUT, process=self.proxy, what="listening")

    def _record_class_archives(self, archives: ClassArchives) -> None:
        """Run a one-broker bed and mqadmin once so that each role's JVM writes its archive at exit."""
        recorder = RocketMQCluster(self.version, archives.directory / "work", broker_count=1,
                                   cluster_name=self.cluster_name, class_archives=archives)
        try:
            recorder.start()
            recorder.mqadmin("clusterList")
        finally:
            recorder.stop(timeout=120.0)  # writing an archive at exit takes a while

    def stop(self, timeout: float = 20.0) -> None:
        """The proxy, then every broker together, then the controller and the name server: each stage stops what
        depends on the next one."""
        for stage in ([self.proxy], [b.process for b in self.nodes], [self.controller], [self.namesrv]):
            stop_together([process for process in stage if process is not None], timeout)

    @property
    def processes(self) -> list[ManagedProcess]:
        return [p for p in [self.namesrv, self.controller, *(b.process for b in self.nodes), self.proxy]
                if p is not None]

    # ---- faults: what chaos experiments, `local kill|pause|resume|restart` and tests inflict -------

    def part(self, name: str) -> ManagedProcess:
        """The process of part `name`; UnknownPart, listing the parts there are, for any other name."""
        for process in self.processes:
            if process.name == name:
                return process
        raise UnknownPart(f"no part {name!r} in this bed; its parts are {', '.join(self.part_names)}")

    @property
    def part_names(self) -> list[str]:
        return [process.name for process in self.processes]

    def kill(self, part: str) -> None:
        """SIGKILL, as a crash or an OOM kill would; returns once the process is gone."""
        self.part(part).kill()

    def pause(self, part: str) -> None:
        """SIGSTOP: the process holds its connections and answers nothing, as in a long GC pause or a frozen VM."""
        self.part(part).pause()

    def resume(self, part: str) -> None:
        """SIGCONT after `pause`."""
        self.part(part).resume()

    def restart(self, part: str, *, wipe_store: bool = False, wait: bool = True) -> None:
        """Start a part again with the same config and port (stopping it first if it runs); with `wipe_store`, a broker
        comes back with an empty store, as after a disk replacement. With `wait`, returns once it listens and, for a
        broker, is registered again (the name server re-learns brokers on their heartbeat, every 30 s)."""
        process = self.part(part)
        broker = next((b for b in self.nodes if b.name == part), None)
        if wipe_store and broker is None:
            raise ValueError(f"{part} keeps no store to wipe: only brokers do")
        process.stop()
        if wipe_store and broker is not None:
            shutil.rmtree(broker.store, ignore_errors=True)
        process.start()
        if wait:
            # Listening first: the name server may still list the dead process under the same address for a moment,
            # which would satisfy the registration check before the new broker can answer.
            wait_until(lambda: _listening(self._port(part)), timeout=_START_TIMEOUT, process=process,
                       what="listening")
            if broker is not None:
                self.wait_registered([part])

    def _port(self, part: str) -> int:
        return {NAME_SERVER: self.namesrv_port, PROXY: self.proxy_port, CONTROLLER: self.controller_port,
                **{b.name: b.port for b in self.nodes}}[part]

    # ---- observation -----------------------------------------------------------------------------

    def wait_registered(self, names: list[str], timeout: float = _START_TIMEOUT) -> None:
        """Block until each named broker process is registered under its broker name at its own address (with its
        own id, unless the controller assigns ids) and every broker name of the bed has a master."""
        wanted = [self.broker(name) for name in names]

        def late(nodes: dict[str, dict[int, str]]) -> list[Broker]:
            return [broker for broker in wanted if not _registered(broker, nodes.get(broker.broker_name, {}))]

        def registered() -> bool:
            for broker in wanted:
                if not broker.process.running:
                    raise broker.process.failure("exited before it registered", broker.log_dir / "broker.log")
            nodes = self.registered_brokers()
            return not late(nodes) and all(0 in nodes.get(name, {}) for name in self.broker_names)

        try:
            wait_until(registered, timeout=timeout, interval=0.5, what=f"registered {sorted(names)}")
        except TimeoutError as timeout_error:
            nodes = self.registered_brokers()
            unregistered = late(nodes) or [b for b in self.nodes if 0 not in nodes.get(b.broker_name, {})]
            if unregistered:
                logs = (broker.log_dir / "broker.log" for broker in unregistered)
                raise unregistered[0].process.failure(str(timeout_error), *logs) from timeout_error
            raise

    def create_topic(self, topic: str, *, queues: int) -> None:
        """Create `topic` on every master and wait until the name server routes it to all of them."""
        create_topic(self.namesrv_addr, list(self.registered_masters().values()), topic, queues)
        self.wait_routed(topic)

    def wait_routed(self, topic: str, timeout: float = _START_TIMEOUT) -> None:
        """Block until the name server routes `topic` to every master (new topics reach it asynchronously)."""
        wait_until(lambda: routed_brokers(self.namesrv_addr, topic) >= set(self.registered_masters().values()),
                   timeout=timeout, interval=0.5, what=f"routing {topic}")

    def registered_brokers(self) -> dict[str, dict[int, str]]:
        """Broker name -> broker id -> address, as the name server reports it now (empty if unreachable)."""
        return registered_brokers(self.namesrv_addr, self.cluster_name)

    def registered_masters(self) -> dict[str, str]:
        """Broker name -> master address, as the name server reports it now (empty if unreachable)."""
        return {name: addrs[0] for name, addrs in self.registered_brokers().items() if 0 in addrs}

    def wait_in_sync(self, broker_name: str, timeout: float = _START_TIMEOUT) -> None:
        """Block until the controller counts every replica of `broker_name` in its sync-state set: the controller elects
        only among those, so a master killed before its slave caught up has no successor."""
        if self.controller_addr is None:
            raise ValueError(f"the {self.topology} topology has no controller and no sync-state set")
        addrs = {broker.addr for broker in self.replicas(broker_name)}

        def in_sync() -> bool:
            shown = self.mqadmin("getSyncStateSet", "-a", str(self.controller_addr), "-b", broker_name, timeout=60.0)
            return parse_in_sync_replicas(shown.stdout) >= addrs

        wait_until(in_sync, timeout=timeout, interval=1.0, what=f"{broker_name}'s replicas in sync")

    def mqadmin(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run the official `mqadmin` from this version's jars against this cluster's name server.

        With ACL on it signs as the admin account: both lines' MQAdminStartup read `$ROCKETMQ_HOME/conf/tools.yml`
        (AclUtils.getAclRPCHook), which `start` writes.
        """
        argv = [*self._java_argv("tools", self.workdir / "tools", maven.rocketmq_lib(self.version)),
                *args, "-n", self.namesrv_addr]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              env=self._java_env(), stdin=subprocess.DEVNULL)

    # ---- process construction --------------------------------------------------------------------

    def _java_env(self) -> dict[str, str]:
        return {"ROCKETMQ_HOME": str(self.rocketmq_home)}

    def _java_argv(self, role: str, home: Path, lib: Path) -> list[str]:
        options = [*HEAP[role], *jvm.FAST_START, *self._class_data_options(role),
                   f"-Drocketmq.home.dir={self.rocketmq_home}", "-Drocketmq.broker.diskSpaceWarningLevelRatio=0.98"]
        return jvm.java_argv([f"{lib}/*"], MAIN[role], home=home, options=options)

    def _write_acl_files(self, admin: Credentials) -> None:
        """conf/tools.yml for mqadmin (every version) and, with ACL 1.0, the broker's accounts in conf/plain_acl.yml.

        ACL 1.0 (4.x and 5.x before rocketmq-auth, e.g. 5.1.4) reads `$ROCKETMQ_HOME/` + `-Drocketmq.acl.plain.file`
        (default `conf/plain_acl.yml`) plus `conf/acl/*.yml`.
        Neither `globalWhiteRemoteAddresses` nor the account's `whiteRemoteAddress` is set: a matching address skips
        the signature check, and every client of the bed is on loopback. The brokers need no whitelist for
        themselves: their only outbound calls go to the name server.
        """
        conf = self.rocketmq_home / "conf"
        keys = {"accessKey": admin.access_key, "secretKey": admin.secret_key}
        (conf / "tools.yml").write_text(yaml.safe_dump(keys))
        if not maven.has_auth(self.version):
            account = {**keys, "admin": True, "defaultTopicPerm": "PUB|SUB", "defaultGroupPerm": "PUB|SUB"}
            (conf / "plain_acl.yml").write_text(yaml.safe_dump({"accounts": [account]}))

    def _acl_conf(self, admin: Credentials) -> dict[str, str | int | bool]:
        """broker.conf keys that turn ACL on: `aclEnable` for ACL 1.0 (4.x, 5.1.x), authentication (ACL 2.0) from
        5.3.0 on, where rocketmq-auth came. 5.5.0 still parses `aclEnable`, but nothing reads it since 5.3.3.

        With authentication the admin is created as a SUPER user at the first start (kept in the store's config
        directory), and the broker's own inner clients sign as the same user.
        """
        if not maven.has_auth(self.version):
            return {"aclEnable": True}
        return {
            "authenticationEnabled": True,
            "authenticationProvider": _AUTH_PROVIDERS + "DefaultAuthenticationProvider",
            "authenticationMetadataProvider": _AUTH_PROVIDERS + "LocalAuthenticationMetadataProvider",
            "initAuthenticationUser": _properties_json({"username": admin.access_key, "password": admin.secret_key}),
            "innerClientAuthenticationCredentials": _properties_json({"accessKey": admin.access_key,
                                                                      "secretKey": admin.secret_key}),
        }

    def _class_data_options(self, role: str) -> list[str]:
        return self.class_archives.jvm_options(role) if self.class_archives else []

    def _java(self, role: str, name: str, home: Path, lib: Path, args: list[str]) -> ManagedProcess:
        return ManagedProcess(name=name, argv=[*self._java_argv(role, home, lib), *args],
                              log_path=home / "process.log", env=self._java_env(), cwd=home)

    def _broker_process(self, plan: NodePlan, port: int, home: Path, lib: Path) -> ManagedProcess:
        home.mkdir(parents=True, exist_ok=True)
        store = home / "store"
        values: dict[str, str | int | bool] = {
            "brokerClusterName": self.cluster_name, "brokerName": plan.broker_name, "brokerId": plan.broker_id,
            "namesrvAddr": self.namesrv_addr, "listenPort": port, "brokerIP1": "127.0.0.1",
            "storePathRootDir": str(store), "storePathCommitLog": str(store / "commitlog"),
            "mappedFileSizeCommitLog": 64 * 1024 * 1024, "mappedFileSizeConsumeQueue": 30000 * 20,
            "maxIndexNum": 40000, "maxHashSlotNum": 10000, "autoCreateTopicEnable": True,
            "autoCreateSubscriptionGroup": self.auto_create_subscription_group,
            "messageDelayLevel": self.delay_levels, "diskMaxUsedSpaceRatio": 95,
        }
        if self.is5:
            # The timer wheel (delayed delivery for 5.x pop consumers behind the proxy) keeps a handful of threads
            # polling; idle, they cost a tenth of a core per broker here, so it runs only when the proxy does.
            values |= {"bindAddress": "127.0.0.1", "diskSpaceWarningLevelRatio": 98,
                       "timerWheelEnable": self.with_proxy, "mappedFileSizeTimerLog": 16 * 1024 * 1024}
        values |= plan.conf
        if self.acl is not None:
            values |= self._acl_conf(self.acl)
        conf = home / "broker.conf"
        conf.write_text(_conf_text(values))
        return self._java("broker", plan.part, home, lib, ["-c", str(conf)])

    def _controller_process(self, lib: Path) -> ManagedProcess:
        home = self.workdir / CONTROLLER
        home.mkdir(parents=True, exist_ok=True)
        conf = home / "controller.conf"
        conf.write_text(_conf_text(controller_conf(self.controller_port, str(home / "store"))))
        return self._java("controller", CONTROLLER, home, lib, ["-c", str(conf)])

    def _proxy_process(self, lib: Path) -> ManagedProcess:
        home = self.workdir / PROXY
        home.mkdir(parents=True, exist_ok=True)
        config = home / "rmq-proxy.json"
        config.write_text(json.dumps({
            "rocketMQClusterName": self.cluster_name, "namesrvAddr": self.namesrv_addr,
            "grpcServerPort": self.proxy_port, "remotingListenPort": self.proxy_remoting_port,
            "proxyMode": "cluster",
        }, indent=2))
        return self._java("proxy", PROXY, home, lib, ["-pc", str(config), "-pm", "cluster"])

    # ---- persistence for `local up/down/status` --------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        return {
            "version": self.version, "workdir": str(self.workdir), "cluster_name": self.cluster_name,
            "broker_count": self.broker_count, "topology": str(self.topology),
            "controller": self.controller.to_record() if self.controller else None,
            "controller_port": self.controller_port,
            "delay_levels": self.delay_levels, "auto_create_subscription_group": self.auto_create_subscription_group,
            "with_proxy": self.with_proxy, "namesrv_port": self.namesrv_port, "proxy_port": self.proxy_port,
            "proxy_remoting_port": self.proxy_remoting_port,
            "namesrv": self.namesrv.to_record() if self.namesrv else None,
            "proxy": self.proxy.to_record() if self.proxy else None,
            "brokers": [{"name": b.name, "port": b.port, "home": str(b.home), "process": b.process.to_record(),
                         "broker_name": b.broker_name, "broker_id": b.broker_id} for b in self.nodes],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "RocketMQCluster":
        def process(value: dict[str, Any] | None) -> ManagedProcess | None:
            return ManagedProcess.from_record(value) if value else None

        return cls(
            version=record["version"], workdir=Path(record["workdir"]), broker_count=record["broker_count"],
            topology=Topology(record["topology"]), controller=process(record["controller"]),
            controller_port=record["controller_port"],
            cluster_name=record["cluster_name"], delay_levels=record["delay_levels"],
            auto_create_subscription_group=record["auto_create_subscription_group"],
            with_proxy=record["with_proxy"], namesrv_port=record["namesrv_port"], proxy_port=record["proxy_port"],
            proxy_remoting_port=record.get("proxy_remoting_port", 0),
            namesrv=process(record["namesrv"]), proxy=process(record["proxy"]),
            nodes=[Broker(b["name"], b["port"], Path(b["home"]), ManagedProcess.from_record(b["process"]),
                            b["broker_name"], b["broker_id"]) for b in record["brokers"]],
        )


def _properties_json(value: dict[str, str]) -> str:
    """JSON as a Java Properties value: Properties reads a backslash as an escape, so JSON's own are doubled."""
    return json.dumps(value, separators=(",", ":")).replace("\\", "\\\\")


def _registered(broker: Broker, addrs: dict[int, str]) -> bool:
    if broker.broker_id < 0:  # the controller assigns the id, and the elected master registers as 0
        return broker.addr in addrs.values()
    return addrs.get(broker.broker_id) == broker.addr


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0

