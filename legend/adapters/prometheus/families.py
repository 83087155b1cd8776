"""Building metric families from the plain numbers the services keep."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


def number(value: object) -> float | None:
    """``value`` as a sample value, or None when it is not a number (booleans are 0/1)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def counters(table: Mapping[str, tuple[float, str]]) -> Iterator[CounterMetricFamily]:
    """One counter a name, from ``name: (value, documentation)``."""
    for name, (value, documentation) in table.items():
        yield counter(name, documentation, value)


def by_label(name: str, documentation: str, label: str, values: Mapping[str, float]) -> CounterMetricFamily:
    """One counter family, a sample a value of ``label``: ``values`` maps each value to its count."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in values.items():
        family.add_metric([value], count)
    return family


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def le_label(value: float) -> str:
    """A bucket bound as Prometheus writes ``le`` (``0.005``, ``1.0``)."""
    return repr(float(value))
