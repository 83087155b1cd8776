"""Messages other programs publish in the specification's format: the stream they belong to, and a
price_update checked and completed like an admin broadcast."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from legend.domain.external import ExternalMessage, external_message

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def parse(topic: str, message: dict[str, object]) -> ExternalMessage | str:
    return external_message(topic, msgspec.json.encode(message), NOW)


def test_a_minimal_price_is_completed_like_a_broadcast_and_keeps_unknown_fields() -> None:
    out = parse("price_updates", {"type": "price_update", "ticker": "aapl", "price": 272.5, "source": "feed"})
    assert isinstance(out, ExternalMessage) and out.stream == "ticker:AAPL" and out.kind == "price_update"
    body = msgspec.json.decode(out.body)
    assert body["ticker"] == "AAPL" and body["open"] == body["high"] == body["low"] == 272.5
    assert body["change"] == 0.0 and body["timestamp"] == "2026-01-05T15:00:00.000Z"
    assert body["source"] == "feed" and body["channel"] == "ticker:AAPL" and "seq" not in body


def test_a_price_that_contradicts_itself_or_names_a_lookalike_is_refused() -> None:
    bad = parse("price_updates", {"type": "price_update", "ticker": "AAPL", "price": 10.0, "high": 9.0})
    assert isinstance(bad, str) and "price" in bad
    lookalike = parse("price_updates", {"type": "price_update", "ticker": "ıbm", "price": 10.0})
    assert isinstance(lookalike, str) and "ASCII" in lookalike
    assert parse("price_updates", {"type": "pattern_alert", "ticker": "AAPL"}) == (
        "a 'pattern_alert' message does not belong on 'price_updates'"
    )


def test_alert_triggers_go_to_their_users_stream_and_plugin_topics_name_theirs() -> None:
    out = parse("alert_triggers", {"type": "alert_trigger", "ticker": "AAPL", "user_id": "ann"})
    assert isinstance(out, ExternalMessage) and out.stream == "alerts:user:ann"
    news = parse("news", {"type": "news", "channel": "news:AAPL", "headline": "x"})
    assert isinstance(news, ExternalMessage) and news.stream == "news:AAPL"
    assert isinstance(parse("news", {"type": "news", "channel": "ticker:AAPL"}), str)
