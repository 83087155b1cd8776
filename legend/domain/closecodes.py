"""WebSocket close codes the server uses, and why. Documented for clients in docs/protocol.md."""

GOING_AWAY = 1001  # the server is shutting down: reconnect (to another instance)
POLICY_VIOLATION = 1008  # sustained inbound flood or an origin that is not allowed
MESSAGE_TOO_BIG = 1009  # a frame beyond the transport's hard limit
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013  # slow consumer: the connection could not keep up; resume with ``since``
UNAUTHORIZED = 4401  # missing, expired or forged token: do not retry with the same token
FORBIDDEN = 4403  # the identity may not connect here
STALE = 4408  # no frame from the client for ``stale_after`` seconds
TOO_MANY_CONNECTIONS = 4429  # over a per-user or per-address connection limit, or reconnecting too fast
