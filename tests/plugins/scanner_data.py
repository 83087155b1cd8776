"""Real bars for the scanner's tests, read from CSV files the repository ships: the daily AAPL bars of
2012-01-03 to 2018-01-19 (tests/plugins/data/AAPL-daily-2012-2018.csv, a slice of Yahoo Finance's
AAPL-20040819-20180120 history, the shared data set's) and the S&P 500 one-minute bars of 5-8 November 2019
(the replay provider's bundled sample, legend/adapters/quotes/data/SP500_NOV2019_IDay.csv). Every figure a
test names can be checked by hand in these files."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from legend.plugins import Bar

ROOT = Path(__file__).resolve().parents[2]
AAPL_DAILY = Path(__file__).resolve().parent / "data" / "AAPL-daily-2012-2018.csv"
SPX_MINUTES = ROOT / "legend" / "adapters" / "quotes" / "data" / "SP500_NOV2019_IDay.csv"
NEW_YORK = ZoneInfo("America/New_York")


def aapl_daily() -> list[Bar]:
    """Date,Open,High,Low,Close,Adj Close,Volume: one 1d bar a session, starting 09:30 New York time."""
    with AAPL_DAILY.open(newline="", encoding="utf-8") as handle:
        return [
            Bar(
                ticker="AAPL",
                interval="1d",
                start=datetime.fromisoformat(row["Date"] + "T09:30").replace(tzinfo=NEW_YORK),
                open=float(row["Open"]),
                high=float(row["High"]),
                low=float(row["Low"]),
                close=float(row["Close"]),
                volume=int(row["Volume"]),
                regular=True,
                closed=True,
            )
            for row in csv.DictReader(handle)
        ]


def spx_minutes() -> list[Bar]:
    """Date,Open,Close,High,Low,Volume (``11/5/2019 9:30``, New York time; no volume: an index)."""
    with SPX_MINUTES.open(newline="", encoding="utf-8") as handle:
        return [
            Bar(
                ticker="SPX",
                interval="1m",
                start=datetime.strptime(row["Date"], "%m/%d/%Y %H:%M").replace(tzinfo=NEW_YORK),
                open=float(row["Open"]),
                high=float(row["High"]),
                low=float(row["Low"]),
                close=float(row["Close"]),
                volume=int(row["Volume"]),
                regular=True,
                closed=True,
            )
            for row in csv.DictReader(handle)
        ]


def day(bar: Bar) -> str:
    """The bar's New York date and time, as the CSV writes it: ``2016-07-27`` or ``2019-11-05 09:45``."""
    local = bar.start.astimezone(NEW_YORK)
    return local.strftime("%Y-%m-%d") if bar.interval == "1d" else local.strftime("%Y-%m-%d %H:%M")
