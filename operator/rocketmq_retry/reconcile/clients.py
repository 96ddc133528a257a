"""Admin clients per cluster and credentials, kept open between passes (connections are multiplexed)."""

from rocketmq_retry.domain.spec import ClusterRef
from rocketmq_retry.remoting.acl import Credentials
from rocketmq_retry.remoting.admin import Admin
from rocketmq_retry.remoting.connection import ConnectionPool


class Admins:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._admins: dict[tuple[str, Credentials | None], Admin] = {}

    def admin(self, cluster: ClusterRef, credentials: Credentials | None = None) -> Admin:
        key = (cluster.key, credentials)
        admin = self._admins.get(key)
        if admin is None:
            pool = ConnectionPool(connect_timeout=min(3.0, self._timeout), request_timeout=self._timeout,
                                  credentials=credentials)
            admin = self._admins[key] = Admin(pool, [str(server) for server in cluster.name_servers])
        return admin

    async def close(self) -> None:
        admins, self._admins = list(self._admins.values()), {}
        for admin in admins:
            await admin.pool.close()
