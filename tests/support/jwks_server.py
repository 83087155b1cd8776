"""A local identity provider's key set for the tests: an HTTP server on 127.0.0.1 serving, at ``/jwks``,
the public halves of the keys published so far, and signing tokens with their private halves. It counts
the fetches, can be made to fail or to answer slowly, and keys can be published (rotation) at any time."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.support.loopback import GetServer


class JwksServer:
    def __init__(self) -> None:
        self._private: dict[str, tuple[Any, str]] = {}  # kid -> (private key, algorithm)
        self._published: dict[str, dict[str, Any]] = {}  # kid -> public JWK
        self.extra: list[dict[str, Any]] = []  # JWKs served as they are (a symmetric key, …)
        self.fetches = 0
        self.status = 200
        self.delay = 0.0
        self._lock = threading.Lock()
        self._http = GetServer(self._answer)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.fetches += 1
            status, delay = self.status, self.delay
            body = json.dumps({"keys": [*self._published.values(), *self.extra]}).encode()
        if delay:
            time.sleep(delay)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.port}/jwks"

    def start(self) -> JwksServer:
        self._http.start()
        return self

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish(self, kid: str, algorithm: str = "RS256") -> None:
        """A new key pair, its public half served from now on (RS256: RSA 2048; ES256: P-256)."""
        if algorithm == "ES256":
            private: Any = ec.generate_private_key(ec.SECP256R1())
            public = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        with self._lock:
            self._private[kid] = (private, algorithm)
            self._published[kid] = {**public, "kid": kid, "use": "sig"}

    def public_jwk(self, kid: str) -> dict[str, Any]:
        return dict(self._published[kid])

    def sign(self, claims: dict[str, Any], kid: str, header_kid: str | None = None) -> str:
        """A token signed with ``kid``'s private key; ``header_kid`` names another key in the header."""
        private, algorithm = self._private[kid]
        return jwt.encode(claims, private, algorithm=algorithm, headers={"kid": header_kid or kid})
