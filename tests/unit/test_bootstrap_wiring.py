"""The composition root wires the backplane's ports each on its own: the price log alert evaluation reads
and the registry that admits connections need not be the object that publishes."""

from __future__ import annotations

from pathlib import Path

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.bootstrap import bootstrap
from legend.settings import DatabaseSettings, Settings


def test_the_price_log_and_the_connection_registry_are_wired_separately(tmp_path: Path) -> None:
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"))
    backplane, price_log, connections = InMemoryBackplane(), InMemoryBackplane(), InMemoryBackplane()
    services = bootstrap(
        settings,
        clock=FrozenClock(),
        backplane=backplane,
        price_log=price_log,
        connections=connections,
        run_quote_poller=False,
    )
    assert services.backplane is backplane and services.cluster is backplane
    assert services.alerting.price_log is price_log
    assert services.streaming.admission is not None
    assert services.streaming.admission.registry is connections


def test_a_backplane_that_serves_every_port_is_wired_to_each(tmp_path: Path) -> None:
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"))
    services = bootstrap(settings, clock=FrozenClock(), run_quote_poller=False)
    assert isinstance(services.backplane, InMemoryBackplane)
    assert services.alerting.price_log is services.backplane
    assert services.streaming.admission is not None
    assert services.streaming.admission.registry is services.backplane
