"""The scanner's detectors over real bars (tests/plugins/scanner_data.py): the daily AAPL bars of 2012-2018
and the S&P 500 one-minute bars of 5-8 November 2019. Every detection asserted names its bar and the
figures that make it, as the CSV files hold them; the lists of dates pin what the default parameters find."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from legend.plugins import Bar
from legend.plugins.builtin.scanner.config import ScannerConfig
from legend.plugins.builtin.scanner.detectors import Detection, breakout, gap, new_high, vcp
from legend.plugins.builtin.scanner.scanner import depth, scan

from .scanner_data import aapl_daily, day, spx_minutes

CONFIG = ScannerConfig()
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def aapl() -> list[Bar]:
    return aapl_daily()


@pytest.fixture(scope="module")
def spx() -> list[Bar]:
    return spx_minutes()


def upto(bars: Sequence[Bar], when: str) -> list[Bar]:
    """The series up to and including the bar of ``when`` (as ``day`` writes it), as the scanner sees it
    when that bar has just closed."""
    index = [day(bar) for bar in bars].index(when)
    return list(bars[max(0, index + 1 - depth(CONFIG, bars[0].interval)) : index + 1])


def every(bars: Sequence[Bar]) -> dict[str, list[str]]:
    """Each pattern type's bars, scanning the series bar by bar as the plugin does."""
    size = depth(CONFIG, bars[0].interval)
    found: dict[str, list[str]] = {}
    for end in range(1, len(bars) + 1):
        for detection in scan(bars[max(0, end - size) : end], CONFIG, NEW_YORK):
            found.setdefault(detection.pattern_type, []).append(day(detection.bar))
    return found


def test_aapl_2012_01_25_gaps_up_8_09_percent_open_64_92_over_the_prior_close_60_06(aapl: list[Bar]) -> None:
    # 2012-01-24 closed at 60.058571; 2012-01-25 opened at 64.919998 and closed at 63.808571
    found = gap(upto(aapl, "2012-01-25"), CONFIG.daily.gap, NEW_YORK)
    assert found is not None and found.pattern_type == "GAP_UP"
    assert (found.entry, found.stop) == (63.808571, 60.058571)
    assert found.target == pytest.approx(63.808571 + 2 * (63.808571 - 60.058571), abs=1e-4)
    assert found.risk_reward == 2.0
    assert found.score == 9.2  # 5 + 5 x (8.09 - 3) / 6
    assert "gapped up 8.09% at the open: 64.92 vs the prior close 60.06" in found.message
    assert gap(upto(aapl, "2012-01-24"), CONFIG.daily.gap, NEW_YORK) is None  # opened at 60.73 after 60.36


def test_aapl_2013_01_24_gaps_down_10_51_percent_open_65_71_under_73_43_with_the_top_score(
    aapl: list[Bar],
) -> None:
    found = gap(upto(aapl, "2013-01-24"), CONFIG.daily.gap, NEW_YORK)
    assert found is not None and found.pattern_type == "GAP_DOWN"
    assert (found.entry, found.stop) == (64.35714, 73.43)  # the close, and the prior close (the gap filled)
    assert found.target == pytest.approx(64.35714 - 2 * (73.43 - 64.35714), abs=1e-4)
    assert found.score == 10.0


def test_aapl_2014_04_28_closes_84_87_above_the_52_week_high_82_16_of_2013_12_05(aapl: list[Bar]) -> None:
    found = new_high(upto(aapl, "2014-04-28"), CONFIG.daily.high, "1d")
    assert found is not None and found.pattern_type == "52_WEEK_HIGH"
    assert found.entry == 84.870003
    assert "new 52-week high: close 84.87 above 82.16" in found.message
    # the stop: the lowest low of the last 10 sessions (2014-04-15 .. 2014-04-28)
    assert found.stop == min(bar.low for bar in upto(aapl, "2014-04-28")[-10:])
    assert found.risk_reward == 2.0
    # 2014-04-25 closed at 81.71, under that high: no new high the day before
    assert new_high(upto(aapl, "2014-04-25"), CONFIG.daily.high, "1d") is None
    # 2014-04-29 closed at 84.65, above the old high too, but one day after a new high: not announced again
    assert new_high(upto(aapl, "2014-04-29"), CONFIG.daily.high, "1d") is None


def test_aapl_2012_01_25_breaks_out_of_a_5_47_percent_base_on_3_2x_its_volume(aapl: list[Bar]) -> None:
    # the 15 sessions 2012-01-03 .. 2012-01-24 (01-16 a holiday): high 61.624287 (01-19), low 58.42857 (01-03),
    # 5.47% <= 6%; 239,578,500 shares on 01-25, 3.2 x the base's average 75,113,687
    found = breakout(upto(aapl, "2012-01-25"), CONFIG.daily.breakout)
    assert found is not None and found.pattern_type == "BREAKOUT"
    base = upto(aapl, "2012-01-24")[-15:]
    assert (day(base[0]), day(base[-1])) == ("2012-01-03", "2012-01-24")
    assert found.stop == min(bar.low for bar in base) == 58.42857
    assert max(bar.high for bar in base) == 61.624287
    assert found.entry == 63.808571
    assert found.target == pytest.approx(63.808571 + 3 * (61.624287 - 58.42857), abs=1e-4)
    assert found.risk_reward == 1.78
    assert "15-bar 5.47% base: close 63.81 above 61.62 on 3.2x the base's volume" in found.message


def test_aapl_2012_05_30_completes_a_vcp_of_three_ever_shallower_quieter_pullbacks(aapl: list[Bar]) -> None:
    # 92.00 (04-10) -> 79.29 (04-24): 13.8%; 88.29 (04-25) -> 79.82 (05-08): 9.6%; 82.27 (05-10) -> 74.60
    # (05-18): 9.3%; 2012-05-30 is the first close (82.74) above the pivot 82.27
    found = vcp(upto(aapl, "2012-05-30"), CONFIG.daily.vcp)
    assert found is not None and found.pattern_type == "VCP"
    assert (found.entry, found.stop) == (82.738571, 74.597145)
    assert "3 contractions (13.8% > 9.6% > 9.3%), close 82.74 above the pivot 82.27" in found.message
    assert found.score == 7.7  # 6 + 1 (a third pullback) + 2 x (1 - 9.32 / 13.82)
    assert vcp(upto(aapl, "2012-05-29"), CONFIG.daily.vcp) is None  # 81.75: under the pivot


def test_spx_2019_11_07_gaps_up_0_33_percent_open_3087_02_over_the_16_00_close_3076_73(
    spx: list[Bar],
) -> None:
    found = gap(upto(spx, "2019-11-07 09:30"), CONFIG.intraday.gap, NEW_YORK)
    assert found is not None and found.pattern_type == "GAP_UP"
    assert (found.entry, found.stop) == (3089.93, 3076.73)
    assert "gapped up 0.33% at the open: 3,087.02 vs the prior close 3,076.73" in found.message
    assert gap(upto(spx, "2019-11-07 09:31"), CONFIG.intraday.gap, NEW_YORK) is None  # not a session's first


def test_spx_2019_11_07_09_30_closes_3089_93_above_the_390_bar_high_3078_34(spx: list[Bar]) -> None:
    found = new_high(upto(spx, "2019-11-07 09:30"), CONFIG.intraday.high, "1m")
    assert found is not None and found.pattern_type == "NEW_HIGH"
    assert found.entry == 3089.93
    assert "new 390-bar high: close 3,089.93 above 3,078.34" in found.message


def test_spx_2019_11_05_10_00_breaks_out_of_the_flat_base_of_09_45_to_09_59(spx: list[Bar]) -> None:
    # no volume in an index's bars: the volume condition is not checked
    found = breakout(upto(spx, "2019-11-05 10:00"), CONFIG.intraday.breakout)
    assert found is not None
    base = upto(spx, "2019-11-05 09:59")[-15:]
    assert (day(base[0]), max(bar.high for bar in base), min(bar.low for bar in base)) == (
        "2019-11-05 09:45",
        3080.05,
        3077.59,
    )
    assert (found.entry, found.stop) == (3082.2, 3077.59)
    assert found.score == 6.2  # 5 + 2.5 x (1 - 0.08 / 0.15); no volume points


def test_what_the_defaults_find_in_the_aapl_daily_bars(aapl: list[Bar]) -> None:
    found = every(aapl)
    assert found["52_WEEK_HIGH"] == [
        "2014-04-28", "2014-10-23", "2015-02-10", "2017-01-09", "2017-08-02", "2017-10-30", "2017-12-18",
    ]  # fmt: skip
    assert found["GAP_UP"][:4] == ["2012-01-25", "2012-04-25", "2013-01-02", "2013-07-24"]
    assert len(found["GAP_UP"]) == 15 and len(found["GAP_DOWN"]) == 14
    assert found["BREAKOUT"] == [
        "2012-01-25", "2013-11-26", "2014-07-23", "2015-04-27", "2017-02-01", "2017-05-01", "2017-10-27",
    ]  # fmt: skip
    assert found["VCP"][:2] == ["2012-03-12", "2012-05-30"]


def test_what_the_defaults_find_in_the_spx_minutes(spx: list[Bar]) -> None:
    found = every(spx)
    assert found["GAP_UP"] == ["2019-11-07 09:30"]  # the only session opening 0.3% away from the last close
    assert "GAP_DOWN" not in found
    assert found["NEW_HIGH"] == [
        "2019-11-07 09:30",
        "2019-11-07 10:50",
        "2019-11-07 11:59",
        "2019-11-08 15:14",
    ]
    assert found["BREAKOUT"][:2] == ["2019-11-05 10:00", "2019-11-05 11:00"]
    # one alert per pattern instance: no detector fires on two bars in a row
    for kind, bars in found.items():
        minutes = [spx_index(spx, when) for when in bars]
        assert all(b - a > 1 for a, b in pairwise(minutes)), kind


def spx_index(spx: list[Bar], when: str) -> int:
    return [day(bar) for bar in spx].index(when)


def test_a_detection_s_prices_and_ratio_follow_the_documented_formula() -> None:
    detection = Detection("X", aapl_daily()[0], entry=10.0, stop=8.0, target=15.0, score=5.0, message="")
    assert detection.risk_reward == 2.5
