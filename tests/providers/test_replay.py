"""ReplayQuoteProvider on the shared real data: every figure checked against aggregates computed here,
independently, from the CSV with the csv module."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.quotes import ReplayDataError, ReplayQuoteProvider, ReplaySource
from legend.domain.quotes import Quote

DATA = Path("/work/shared/data")
SP500 = DATA / "SP500_NOV2019_IDay.csv"
AAPL = DATA / "yahoofinance-AAPL-20040819-20180120.csv"
NEW_YORK = ZoneInfo("America/New_York")

pytestmark = pytest.mark.skipif(not SP500.exists() or not AAPL.exists(), reason="shared data not present")


@dataclass(frozen=True)
class Expected:
    when: str
    price: float
    open: float
    high: float
    low: float
    volume: int
    previous_close: float
    timestamp: float


def expected_bars(path: Path, session_of, stamp_of) -> list[Expected]:  # type: ignore[no-untyped-def]
    """Running session figures, the obvious way: one pass over the rows, as a trader would tally them."""
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    out: list[Expected] = []
    session = None
    previous_close = float(rows[0]["Open"])  # documented: the first session compares with the first open
    last_close = 0.0
    for row in rows:
        o, h, lo, c = (float(row[k]) for k in ("Open", "High", "Low", "Close"))
        if session_of(row) != session:
            if session is not None:
                previous_close = last_close
            session = session_of(row)
            day_open, high, low, volume = o, h, lo, 0
        high, low = max(high, h), min(low, lo)
        volume += int(row["Volume"])
        last_close = c
        out.append(Expected(row["Date"], c, day_open, high, low, volume, previous_close, stamp_of(row)))
    return out


def sp500_expected() -> list[Expected]:
    return expected_bars(
        SP500,
        lambda row: row["Date"].split(" ")[0],
        lambda row: datetime.strptime(row["Date"], "%m/%d/%Y %H:%M").replace(tzinfo=NEW_YORK).timestamp(),
    )


def aapl_expected() -> list[Expected]:
    return expected_bars(
        AAPL,
        lambda row: row["Date"],
        lambda row: (
            datetime.strptime(row["Date"] + " 16:00", "%Y-%m-%d %H:%M").replace(tzinfo=NEW_YORK).timestamp()
        ),
    )


def assert_matches(quote: Quote, want: Expected, ticker: str) -> None:
    at = f"{ticker} bar {want.when}"
    assert quote.ticker == ticker
    assert quote.price == pytest.approx(want.price, abs=1e-4), at
    assert quote.open == pytest.approx(want.open, abs=1e-4), at
    assert quote.high == pytest.approx(want.high, abs=1e-4), at
    assert quote.low == pytest.approx(want.low, abs=1e-4), at
    assert quote.volume == want.volume, at
    assert quote.previous_close == pytest.approx(want.previous_close, abs=1e-4), at
    assert quote.timestamp == want.timestamp, at
    # change and change_percent from the quote's own (4-place) price and previous close, to 2 places
    assert quote.previous_close is not None
    difference = quote.price - quote.previous_close
    assert quote.change == round(difference, 2), at
    assert quote.change_percent == round(difference / quote.previous_close * 100, 2), at
    assert quote.low <= quote.price <= quote.high, at


def provider(**files: Path | ReplaySource) -> ReplayQuoteProvider:
    return ReplayQuoteProvider(
        {t: f if isinstance(f, ReplaySource) else ReplaySource(f) for t, f in files.items()}, loop=False
    )


async def test_sp500_intraday_every_poll_matches_the_bars_across_the_session_boundary() -> None:
    want = sp500_expected()
    replay = provider(SPX=SP500)
    for n in range(1, 451):  # 391 bars on 5 Nov, then into 6 Nov
        [quote] = await replay.fetch(["SPX"])
        assert_matches(quote, want[n - 1], "SPX")  # after N polls: the Nth bar


async def test_sp500_change_is_against_the_previous_session_close_from_6_nov() -> None:
    replay = provider(SPX=SP500)
    quotes = [(await replay.fetch(["SPX"]))[0] for _ in range(393)]
    with SP500.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows[390]["Date"] == "11/5/2019 16:00" and rows[391]["Date"] == "11/6/2019 9:30"
    last_of_5th, first_of_6th = quotes[390], quotes[391]
    assert last_of_5th.previous_close == float(rows[0]["Open"])  # first session: its first open
    assert first_of_6th.previous_close == float(rows[390]["Close"])  # 5 Nov, 16:00 close
    assert first_of_6th.open == float(rows[391]["Open"])
    assert (first_of_6th.high, first_of_6th.low) == (float(rows[391]["High"]), float(rows[391]["Low"]))
    assert first_of_6th.change == round(float(rows[391]["Close"]) - float(rows[390]["Close"]), 2)
    assert quotes[392].high == max(float(rows[391]["High"]), float(rows[392]["High"]))
    # The price_update timestamp is the bar's market time: 6 Nov 2019 09:30 EST is 14:30 UTC.
    assert datetime.fromtimestamp(first_of_6th.timestamp or 0, UTC) == datetime(
        2019, 11, 6, 14, 30, tzinfo=UTC
    )


async def test_aapl_daily_bars_each_day_is_a_session() -> None:
    want = aapl_expected()
    replay = provider(AAPL=AAPL)
    for n in range(1, 301):
        [quote] = await replay.fetch(["AAPL"])
        assert_matches(quote, want[n - 1], "AAPL")
        if n > 1:  # a daily bar's figures are its own; the previous close is the day before's close
            assert quote.previous_close == pytest.approx(want[n - 2].price, abs=1e-4)
            assert quote.volume == want[n - 1].volume and quote.open == pytest.approx(
                want[n - 1].open, abs=1e-4
            )
    # Yahoo's float noise is rounded away (179.100006 -> 179.1), sub-cent history kept to 4 places.
    assert (await provider(AAPL=AAPL).fetch(["AAPL"]))[0].price == 2.1936


async def test_start_date_begins_there_with_the_real_previous_close() -> None:
    replay = provider(
        AAPL=ReplaySource(AAPL, start=date(2017, 1, 1)), SPX=ReplaySource(SP500, start=date(2019, 11, 7))
    )
    aapl, spx = await replay.fetch(["AAPL", "SPX"])
    want_aapl = next(e for e in aapl_expected() if e.when == "2017-01-03")  # first trading day of 2017
    assert_matches(aapl, want_aapl, "AAPL")
    want_previous = next(
        e for e in aapl_expected() if e.when == "2016-12-30"
    )  # last day of 2016, in the file
    assert aapl.previous_close == pytest.approx(want_previous.price, abs=1e-4) == 115.82
    want_spx = next(e for e in sp500_expected() if e.when == "11/7/2019 9:30")
    assert_matches(spx, want_spx, "SPX")


async def test_unknown_tickers_are_left_out_duplicates_once_order_kept() -> None:
    replay = provider(SPX=SP500, AAPL=AAPL)
    quotes = await replay.fetch(["MSFT", "SPX", "AAPL", "SPX", ""])
    assert [q.ticker for q in quotes] == ["SPX", "AAPL"]
    assert await replay.fetch(["MSFT", "TSLA"]) == []
    assert replay.tickers == ["AAPL", "SPX"]


async def test_all_files_move_on_one_replay_clock() -> None:
    replay = provider(SPX=SP500, AAPL=AAPL)
    for _ in range(3):
        await replay.fetch(["SPX"])
    [aapl] = await replay.fetch(["AAPL"])  # the 4th fetch: the 4th bar, although AAPL was not asked before
    assert_matches(aapl, aapl_expected()[3], "AAPL")
    assert replay.position("AAPL") == {
        "file": str(AAPL),
        "bar": 3,
        "bars": 3379,
        "session": "2004-08-24",
        "timestamp": aapl.timestamp,
    }


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def replayed(path: Path, count: int, **options: Any) -> list[Quote]:
    """The first ``count`` quotes of ticker X replayed from ``path`` (``options``: the provider's)."""
    replay = ReplayQuoteProvider({"X": ReplaySource(path)}, **options)
    return [(await replay.fetch(["X"]))[0] for _ in range(count)]


THREE_BARS = """Date,Open,High,Low,Close,Volume
2024-03-04 09:30,10,11,9.5,10.5,100
2024-03-04 09:31,10.5,12,10,11.5,200
2024-03-04 09:32,11.5,11.6,8,9,300
"""


async def test_loop_starts_again_and_no_loop_holds_the_last_bar(tmp_path: Path) -> None:
    path = write(tmp_path / "three.csv", THREE_BARS)
    prices = [q.price for q in await replayed(path, 7, loop=True)]
    assert prices == [10.5, 11.5, 9.0, 10.5, 11.5, 9.0, 10.5]
    again = (await ReplayQuoteProvider({"X": ReplaySource(path)}).fetch(["X"]))[0]
    quotes = await replayed(path, 5, loop=False)
    assert [q.price for q in quotes] == [10.5, 11.5, 9.0, 9.0, 9.0]
    assert quotes[-1] == quotes[2]  # the end: the last bar, unchanged
    assert (quotes[-1].high, quotes[-1].low, quotes[-1].volume) == (12.0, 8.0, 600)
    assert again == quotes[0]


async def test_speed_is_bars_per_fetch(tmp_path: Path) -> None:
    rows = "".join(f"2024-03-04 10:{m:02d},{m + 1},{m + 2},{m},{m + 1},1\n" for m in range(20))
    path = write(tmp_path / "twenty.csv", "Datetime,Open,High,Low,Close,Volume\n" + rows)
    assert [q.volume for q in await replayed(path, 5, speed=5, loop=False)] == [1, 6, 11, 16, 20]
    assert [q.volume for q in await replayed(path, 5, speed=0.5)] == [1, 1, 2, 2, 3]


async def test_time_advance_follows_the_clock_not_the_polls(tmp_path: Path) -> None:
    rows = "".join(f"2024-03-04 10:{m:02d},{m + 1},{m + 2},{m},{m + 1},1\n" for m in range(60))
    path = write(tmp_path / "sixty.csv", "Datetime,Open,High,Low,Close,Volume\n" + rows)
    clock = FrozenClock()
    replay = ReplayQuoteProvider({"X": ReplaySource(path)}, speed=2, advance="time", clock=clock)
    assert (await replay.fetch(["X"]))[0].volume == 1  # the first fetch starts the replay clock
    assert (await replay.fetch(["X"]))[0].volume == 1  # no time passed: same bar
    clock.advance(10)
    assert (await replay.fetch(["X"]))[0].volume == 21  # 10 s at 2 bars/s: bar 20
    clock.advance(1.2)
    assert (await replay.fetch(["X"]))[0].volume == 23
    clock.advance(40)  # bar 22 + 80 = 102 → loops: 102 % 60 = 42
    assert (await replay.fetch(["X"]))[0].volume == 43


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "iso-offset.csv",  # ISO 8601 with offsets, Yahoo intraday style, with Adj Close
            "Datetime,Open,High,Low,Close,Adj Close,Volume\n"
            "2019-11-05 09:30:00-05:00,10,11,9,10.5,10.4,100\n"
            "2019-11-05 09:31:00-05:00,10.5,12,10,11,10.9,50\n"
            "2019-11-06 09:30:00-05:00,11,11.5,10.8,11.2,11.1,70\n",
        ),
        (
            "stooq.txt",  # <DATE>;<TIME> in separate columns, semicolons, compact formats, extra columns
            "<TICKER>;<PER>;<DATE>;<TIME>;<OPEN>;<HIGH>;<LOW>;<CLOSE>;<VOL>;<OPENINT>\n"
            "X;5;20191105;093000;10;11;9;10.5;100;0\n"
            "X;5;20191105;093100;10.5;12;10;11;50;0\n"
            "X;5;20191106;093000;11;11.5;10.8;11.2;70;0\n",
        ),
        (
            "epoch-newest-first.csv",  # epoch seconds, newest first (reversed on load)
            "timestamp,open,high,low,close,volume\n"
            "1573050600,11,11.5,10.8,11.2,70\n"
            "1572964260,10.5,12,10,11,50\n"
            "1572964200,10,11,9,10.5,100\n",
        ),
        (
            "us-ampm.csv",  # US dates with AM/PM and a BOM, tab separated
            "\ufeffDate\tOpen\tHigh\tLow\tLast\tVolume\n"
            "11/05/2019 09:30 AM\t10\t11\t9\t10.5\t100\n"
            "11/05/2019 09:31 AM\t10.5\t12\t10\t11\t50\n"
            "11/06/2019 09:30 AM\t11\t11.5\t10.8\t11.2\t70\n",
        ),
    ],
)
async def test_common_layouts_give_the_same_figures(tmp_path: Path, name: str, text: str) -> None:
    quotes = await replayed(write(tmp_path / name, text), 3, loop=False)
    assert [q.price for q in quotes] == [10.5, 11.0, 11.2]
    assert [(q.open, q.high, q.low, q.volume) for q in quotes] == [
        (10, 11, 9, 100),
        (10, 12, 9, 150),
        (11, 11.5, 10.8, 70),
    ]
    assert [q.previous_close for q in quotes] == [10, 10, 11]
    assert quotes[2].change == 0.2 and quotes[2].change_percent == 1.82
    assert quotes[0].timestamp == datetime(2019, 11, 5, 14, 30, tzinfo=UTC).timestamp()


async def test_yahoo_null_rows_are_skipped_and_volume_is_optional(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gaps.csv",
        "Date,Open,High,Low,Close\n2020-01-02,1,2,0.5,1.5\n2020-01-03,null,null,null,null\n2020-01-06,1.5,3,1,2\n",
    )
    first, second = await replayed(path, 2, loop=False)
    assert (first.price, second.price, second.previous_close, second.volume) == (1.5, 2.0, 1.5, 0)
    assert datetime.fromtimestamp(second.timestamp or 0, NEW_YORK) == datetime(
        2020, 1, 6, 16, 0, tzinfo=NEW_YORK
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,10\n2020-01-03,1,2,abc,1.5,10\n",
         "line 3: Low is 'abc', not a number"),
        ("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,10\n\n2020-13-45,1,2,0.5,1.5,10\n",
         "line 4: cannot read the time '2020-13-45'"),
        ("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,10\n2020-01-03,1,2\n",
         "line 3: 3 fields, expected at least 6"),
        ("Date,Open,High,Low,Close\n2020-01-02,1,2,0.5,1.5\n2020-01-06,1,2,0.5,1.5\n2020-01-03,1,2,0.5,1.5\n",
         "line 4: the bars are not in time order"),
        ("Date,Open,High,Low,Close,Volume\n", "no bars after the header"),
        ("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,inf,10\n", "line 2: Close is 'inf'"),
    ],
)  # fmt: skip
async def test_a_malformed_file_is_a_clear_error_naming_the_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "broken.csv", text)
    replay = ReplayQuoteProvider({"X": ReplaySource(path)})
    with pytest.raises(ReplayDataError) as error:
        await replay.fetch(["X"])
    assert str(error.value).startswith(f"replay: {path}") and message in str(error.value)
    with pytest.raises(ReplayDataError):  # read once; the same error again, without reading again
        await replay.fetch(["X"])


async def test_a_broken_file_does_not_hide_the_good_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = write(tmp_path / "bad.csv", "Date,Open,High,Low,Close\n2020-01-02,1,2,x,1\n")
    replay = ReplayQuoteProvider({"BAD": ReplaySource(bad), "SPX": ReplaySource(SP500)})
    with caplog.at_level(logging.ERROR, logger="legend.quotes.replay"):
        quotes = await replay.fetch(["BAD", "SPX"])
    assert [q.ticker for q in quotes] == ["SPX"]
    assert f"{bad} line 2: Low is 'x'" in caplog.text


def test_a_file_without_ohlc_columns_or_missing_is_refused_before_any_fetch(tmp_path: Path) -> None:
    wrong = write(tmp_path / "wrong.csv", "Date,Price,Volume\n2020-01-02,1,2\n")
    with pytest.raises(
        ReplayDataError, match=r"wrong.csv line 1: no Open, High, Low, Close column; the header"
    ):
        ReplayQuoteProvider({"X": ReplaySource(wrong)}).check_files()
    with pytest.raises(ReplayDataError, match=r"nowhere.csv: file not found"):
        ReplayQuoteProvider({"X": ReplaySource(tmp_path / "nowhere.csv")}).check_files()
    later = write(tmp_path / "early.csv", "Date,Open,High,Low,Close\n2020-01-02,1,2,0.5,1\n")
    replay = ReplayQuoteProvider({"X": ReplaySource(later)}, start=date(2021, 1, 1))
    replay.check_files()


async def test_a_start_after_the_last_bar_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "early.csv", "Date,Open,High,Low,Close\n2020-01-02,1,2,0.5,1\n")
    replay = ReplayQuoteProvider({"X": ReplaySource(path)}, start=date(2021, 1, 1))
    with pytest.raises(ReplayDataError, match=r"start 2021-01-01 is after the last bar \(2020-01-02\)"):
        await replay.fetch(["X"])


async def test_daily_bars_stamped_at_midnight_are_daily_sessions(tmp_path: Path) -> None:
    path = write(
        tmp_path / "daily-utc.csv",
        "Date,Open,High,Low,Close,Volume\n2020-01-02T00:00:00Z,1,2,0.5,1.5,10\n2020-01-03T00:00:00Z,1.5,3,1,2,20\n",
    )
    first, second = await replayed(path, 2, loop=False)
    assert (second.open, second.high, second.volume, second.previous_close) == (1.5, 3.0, 20, 1.5)
    stamp = datetime.fromtimestamp(second.timestamp or 0, NEW_YORK)
    assert stamp == datetime(2020, 1, 3, 16, 0, tzinfo=NEW_YORK)  # the close of that day, not midnight UTC
