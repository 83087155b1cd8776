"""How a handler receives what it uses: ``create_app`` provides each service under a name of its own (one
Litestar ``Provide`` each), and a handler asks for it by that name, typed ``Service[...]``::

    async def list_rules(self, alerting: Service[AlertingService], user_id: NamedDependency[str]) -> Rules:

A service is the server's own object, passed as it is (not validated as request input, and not part of the
API schema). The names: ``streaming``, ``publisher``, ``cluster``, ``backplane``, ``streamer``,
``calendar``, ``clock``, ``watchlists``, ``alerting``, ``plugins``, ``service_status``, ``supervisor``,
``instance_id``, ``security`` (the security settings), ``metrics`` (this app's Prometheus registry), ``database``
(its health, for ``/ready``), ``bar_store`` (None without a database), ``ticker_check`` and
``authenticator`` (for plugin routes too).

A name must never also be the name of a field or parameter of the API: Litestar takes a validation error
under a dependency's name for a failed dependency and answers 500, not 400 (``status`` is a field of the
market status broadcast, hence ``service_status``; a test checks the names against the schema).
"""

from __future__ import annotations

from typing import TypeAlias, TypeVar

from litestar.di import NamedDependency
from litestar.params import SkipValidation

T = TypeVar("T")

Service: TypeAlias = NamedDependency[SkipValidation[T]]
