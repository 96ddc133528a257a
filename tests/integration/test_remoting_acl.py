"""ACL end to end: our signed Admin against brokers that refuse unsigned requests (every bed version).

How a refused request comes back differs by line; the codes and remarks asserted here are what the brokers answered:

* 4.9.7 (ACL 1.0): the broker's RPC hook throws AclException before any processor runs, and the remoting layer answers
  every exception with SYSTEM_ERROR(1) and a remark of class, message and throwing frame, e.g.
  "org.apache.rocketmq.acl.common.AclException: No accessKey is configured, org.apache.rocketmq.acl.plain.
  PlainPermissionManager.validate(PlainPermissionManager.java:663)". On 4.x only the remark tells ACL from a failure.
* 5.5.0 (authentication, ACL 2.0): AuthenticationPipeline answers NO_PERMISSION(16) with the bare message of the
  AuthenticationException as remark, e.g. "username cannot be null.".
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from rocketmq_lab.bed import maven
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.bed.versions import ROCKETMQ_VERSIONS
from rocketmq_retry.remoting import (
    Admin,
    BrokerError,
    ConnectionPool,
    Credentials,
    ResponseCode,
    SubscriptionGroupConfig,
)

ADMIN = Credentials("bed-admin", "bed-admin-secret")
WRONG_SECRET = Credentials(ADMIN.access_key, "not-the-secret")
UNKNOWN_USER = Credentials("nobody", ADMIN.secret_key)


@pytest.fixture(scope="module", params=ROCKETMQ_VERSIONS)
def acl_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[RocketMQCluster]:
    """A name server and one master broker that accepts only requests signed by ADMIN."""
    version: str = request.param
    home = tmp_path_factory.mktemp(f"rocketmq-acl-{version}")
    with RocketMQCluster(version, home, broker_count=1, acl=ADMIN).running() as cluster:
        yield cluster


@contextlib.asynccontextmanager
async def _admin(cluster: RocketMQCluster, credentials: Credentials | None) -> AsyncIterator[Admin]:
    async with ConnectionPool(request_timeout=15, credentials=credentials) as pool:
        yield Admin(pool, [cluster.namesrv_addr])


@pytest.fixture
async def signed(acl_cluster: RocketMQCluster) -> AsyncIterator[Admin]:
    async with _admin(acl_cluster, ADMIN) as admin:
        yield admin


def _group() -> SubscriptionGroupConfig:
    return SubscriptionGroupConfig(f"acl_group_{uuid.uuid4().hex[:10]}", retry_max_times=3, retry_queue_nums=1)


async def test_a_signed_admin_creates_and_reads_a_group(acl_cluster: RocketMQCluster, signed: Admin) -> None:
    broker = acl_cluster.brokers[0]
    info = await signed.cluster_info()  # the name server has no ACL; a signed request is accepted all the same
    assert info.masters(acl_cluster.cluster_name)[0].master_addr == broker.addr
    wanted = _group()

    await signed.update_subscription_group(broker.addr, wanted)

    stored = await signed.get_subscription_group(broker.addr, wanted.group_name)
    assert stored is not None
    assert (stored.retry_max_times, stored.retry_queue_nums) == (3, 1)


@pytest.mark.parametrize(("credentials", "remark_4", "remark_5"), [
    pytest.param(None, "No accessKey is configured", "username cannot be null.", id="unsigned"),
    pytest.param(WRONG_SECRET, f"Check signature failed for accessKey={ADMIN.access_key}", "check signature failed.",
                 id="wrong-secret"),
    pytest.param(UNKNOWN_USER, "No acl config for nobody", "User:nobody is not found.", id="unknown-user"),
])
async def test_a_write_without_the_right_secret_is_refused(acl_cluster: RocketMQCluster, signed: Admin,
                                                           credentials: Credentials | None, remark_4: str,
                                                           remark_5: str) -> None:
    broker = acl_cluster.brokers[0]
    wanted = _group()

    async with _admin(acl_cluster, credentials) as admin:
        with pytest.raises(BrokerError) as refused:
            await admin.update_subscription_group(broker.addr, wanted)

    authentication = maven.has_auth(acl_cluster.version)  # else ACL 1.0, as on 4.x (5.1.4 answers as 4.9.7 does)
    code, remark = (ResponseCode.NO_PERMISSION, remark_5) if authentication else (ResponseCode.SYSTEM_ERROR, remark_4)
    assert refused.value.code == code, refused.value
    assert remark in (refused.value.remark or ""), refused.value
    assert credentials is None or credentials.secret_key not in str(refused.value)
    assert await signed.get_subscription_group(broker.addr, wanted.group_name) is None


async def test_mqadmin_signs_with_the_beds_admin_account(acl_cluster: RocketMQCluster, signed: Admin) -> None:
    broker = acl_cluster.brokers[0]
    name = f"acl_tools_{uuid.uuid4().hex[:10]}"

    # mqadmin exits 0 even when the broker refused, so success is read from the broker itself.
    done = await asyncio.to_thread(acl_cluster.mqadmin, "updateSubGroup", "-b", broker.addr, "-g", name, "-r", "7")

    stored = await signed.get_subscription_group(broker.addr, name)
    assert stored is not None, done.stdout + done.stderr
    assert stored.retry_max_times == 7
