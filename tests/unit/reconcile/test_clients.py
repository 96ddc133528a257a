"""Admin clients are shared per cluster and credentials, never across credentials."""

from rocketmq_retry.domain.spec import parse_cluster
from rocketmq_retry.reconcile.clients import Admins
from rocketmq_retry.remoting.acl import Credentials


async def test_a_pool_is_shared_only_by_the_same_cluster_and_credentials() -> None:
    admins = Admins(timeout=5.0)
    cluster = parse_cluster({"nameServers": "127.0.0.1:9876;127.0.0.2:9876"})
    same_servers = parse_cluster({"nameServers": "127.0.0.2:9876;127.0.0.1:9876"})
    signed = admins.admin(cluster, Credentials("ak", "one"))

    assert admins.admin(same_servers, Credentials("ak", "one")) is signed
    others = [admins.admin(cluster, Credentials("ak", "two")), admins.admin(cluster, Credentials("other", "one")),
              admins.admin(cluster)]
    assert len({id(admin.pool) for admin in [signed, *others]}) == 4
    await admins.close()
