"""The Redis adapters: the backplane (``RedisBackplane``) and, on its connection, cluster membership,
the price log and the connection registry. Modules are named after what they hold; the Lua scripts are
the ``.lua`` files beside them (``scripts``)."""

from legend.adapters.redis.backplane import RedisBackplane
from legend.adapters.redis.membership import RedisClusterMembership

__all__ = ["RedisBackplane", "RedisClusterMembership"]
