"""The shipped deploy/nginx.conf in front of an instance at server.max_connections: its handshake answer
(HTTP 503 before the upgrade) makes nginx try the other instance (``proxy_next_upstream http_503``), so a
client never sees the full one."""

from __future__ import annotations

from tests.integration.conftest import QUIET
from tests.support.nginx import Nginx
from tests.support.server import LegendServer, merge
from tests.support.wsclient import connect


async def test_nginx_sends_the_handshake_a_full_instance_refuses_to_the_other() -> None:
    full = LegendServer(merge(QUIET, {"server": {"max_connections": 1}}))
    roomy = LegendServer(QUIET)
    nginx: Nginx | None = None
    try:
        full.start()
        roomy.start()
        nginx = Nginx([f"127.0.0.1:{full.port}", f"127.0.0.1:{roomy.port}"]).start()
        filler = await connect(full.ws_url, user_id="filler")  # straight to it: nginx does not count it
        clients = [await connect(nginx.ws_url, user_id=f"n{i}") for i in range(4)]  # all admitted
        assert full.stats()["refused_full"] >= 1  # nginx did try the full one, and went on
        assert roomy.stats()["active_connections"] == 4
        for client in (*clients, filler):
            await client.close()
    finally:
        if nginx is not None:
            nginx.close()
        full.close()
        roomy.close()
