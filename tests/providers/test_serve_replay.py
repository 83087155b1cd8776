"""End to end: ``legend serve`` with ``provider = "replay"`` streams the real intraday S&P 500 bars to a
WebSocket client (a real server process on a free port, a real client)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from legend.adapters.quotes.replay import SAMPLE_FILE
from tests.support.server import LegendServer
from tests.support.wsclient import connect


async def test_legend_serve_streams_the_real_sp500_bars() -> None:
    with SAMPLE_FILE.open(newline="") as file:
        bars = list(csv.DictReader(file))
    server = LegendServer(
        {"quotes": {"provider": "replay"}, "realtime": {"update_interval": 0.5, "after_hours_interval": 0.5}}
    ).start()
    try:
        client = await connect(server.ws_url, user_id="trader")
        ack = client.received[0]
        try:
            await client.send({"type": "subscribe", "channel": "ticker", "ticker": "SPX"})
            updates = await client.collect("price_update", 3, timeout=20)
            # a symbol the provider has no data for is refused, not streamed as silence
            await client.send({"type": "subscribe", "channel": "ticker", "ticker": "NOTAREALTICK"})
            refused = await client.expect("error")
        finally:
            await client.connection.close()
        quote_poller = server.stats()["streamer"]
    finally:
        server.close()
    # real (if old) market data: the connection ack names the provider and does not say "simulated"
    assert ack["quote_provider"] == "replay" and "simulated_prices" not in ack
    assert refused["code"] == "unknown_ticker" and "NOTAREALTICK" in refused["message"]
    assert quote_poller["provider"] == "replay" and quote_poller["provider_errors"] == 0
    new_york = ZoneInfo("America/New_York")
    for update in updates:
        at = datetime.fromisoformat(update["timestamp"].replace("Z", "+00:00"))
        bar = next(
            b for b in bars if datetime.strptime(b["Date"], "%m/%d/%Y %H:%M").replace(tzinfo=new_york) == at
        )
        assert update["ticker"] == "SPX" and update["price"] == float(bar["Close"])
        assert update["open"] == float(bars[0]["Open"]) and update["previous_close"] == float(bars[0]["Open"])
    stamps = [datetime.fromisoformat(u["timestamp"].replace("Z", "+00:00")) for u in updates]
    assert stamps == sorted(stamps) and stamps[0] >= datetime(2019, 11, 5, 14, 30, tzinfo=UTC)
