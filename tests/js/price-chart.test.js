// @ts-check
// Tests of web/static/js/price-chart.js: exchange-time shifting, line points and candles built from the
// stream's prices, and the PriceChart view against a recording stand-in for the chart library (the real
// library is driven in Chromium by tests/browser/test_charts_and_signin.py).
// Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { PriceChart, barPoints, candleInterval, intervalLabel, linePoints, toCandles, zoneOffset, zonedInstant, zonedSeconds } from '../../web/static/js/price-chart.js';
import { makeChartLibrary as fakeLibrary } from './fakes.js';

const NY = 'America/New_York';
const at = (iso) => Date.parse(iso);

test('chart: times are shifted to the exchange wall clock, across daylight saving changes', () => {
    // 14:30 UTC is 9:30 in New York in winter (EST, -5 h) ...
    assert.equal(zoneOffset(at('2025-01-15T14:30:00Z'), NY), -5 * 3600000);
    assert.equal(zonedSeconds(at('2025-01-15T14:30:00Z'), NY), at('2025-01-15T09:30:00Z') / 1000);
    // ... and 13:30 UTC in summer (EDT, -4 h)
    assert.equal(zonedSeconds(at('2025-07-15T13:30:00Z'), NY), at('2025-07-15T09:30:00Z') / 1000);
    // the night the clocks go forward (9 March 2025, 2:00 EST -> 3:00 EDT)
    assert.equal(zoneOffset(at('2025-03-09T06:59:59Z'), NY), -5 * 3600000);
    assert.equal(zoneOffset(at('2025-03-09T07:00:00Z'), NY), -4 * 3600000);
    // other zones, and UTC
    assert.equal(zoneOffset(at('2025-07-15T00:00:00Z'), 'Asia/Kolkata'), 5.5 * 3600000);
    assert.equal(zonedSeconds(at('2025-07-15T12:00:00.750Z'), 'UTC'), at('2025-07-15T12:00:00Z') / 1000);
    // milliseconds never push a time into the next second
    assert.equal(zonedSeconds(at('2025-01-15T14:30:00.999Z'), NY), zonedSeconds(at('2025-01-15T14:30:00Z'), NY));
});

test('chart: one line point per second, the last price of a second winning', () => {
    const t0 = at('2025-01-15T14:30:00Z');
    const points = linePoints([t0, t0 + 400, t0 + 1000, t0 + 5000], [10, 11, 12, 13], NY);
    const base = zonedSeconds(t0, NY);
    assert.deepEqual(points, [
        { time: base, value: 11 },
        { time: base + 1, value: 12 },
        { time: base + 5, value: 13 },
    ]);
    assert.deepEqual(linePoints([], [], NY), []);
});

test('chart: candles hold the open, high, low and close of their interval, aligned in exchange time', () => {
    const t0 = at('2025-01-15T14:30:00Z'); // 9:30:00 ET
    const times = [t0, t0 + 20000, t0 + 40000, t0 + 59000, t0 + 60000, t0 + 61000, t0 + 150000];
    const prices = [100, 103, 99, 101, 101.5, 100.5, 102];
    const open = zonedSeconds(t0, NY);
    assert.deepEqual(toCandles(times, prices, 60, NY), [
        { time: open, open: 100, high: 103, low: 99, close: 101 },
        { time: open + 60, open: 101.5, high: 101.5, low: 100.5, close: 100.5 },
        { time: open + 120, open: 102, high: 102, low: 102, close: 102 },
    ]);
    // India is +5:30: hourly candles start on the exchange's hour, not UTC's
    const kolkata = toCandles([at('2025-01-15T04:00:00Z')], [1], 3600, 'Asia/Kolkata');
    assert.equal(new Date(kolkata[0].time * 1000).toISOString(), '2025-01-15T09:00:00.000Z');
});

test('chart: the candle interval fits a few prices per candle and at most 150 candles', () => {
    const series = (count, stepMs) => Array.from({ length: count }, (_, i) => i * stepMs);
    assert.equal(candleInterval([]), 60);
    assert.equal(candleInterval([0]), 60);
    assert.equal(candleInterval(series(100, 5000)), 30); // prices every 5 s: 4 per candle -> 20 s -> 30 s
    assert.equal(candleInterval(series(100, 1000)), 5);
    assert.equal(candleInterval(series(5000, 5000)), 300); // 7 hours of 5 s prices: 150 candles at most
    assert.equal(candleInterval(series(3, 86400000)), 14400); // the widest offered
    assert.equal(intervalLabel(5), '5s');
    assert.equal(intervalLabel(300), '5m');
    assert.equal(intervalLabel(7200), '2h');
});

test('chart view: line, then candles from the same prices, live prices extend the current one', () => {
    const lib = fakeLibrary();
    const view = new PriceChart(/** @type {any} */ ('el'), { library: lib, timeZone: NY, zoneLabel: 'ET', localZone: NY });
    const t0 = at('2025-01-15T14:30:00Z');
    const times = [t0, t0 + 5000, t0 + 10000];
    const prices = [100, 101, 99];
    view.show({ times, prices, previousClose: 100.5, kind: 'line' });
    assert.equal(lib.chart.series.length, 1);
    const line = lib.chart.series[0];
    assert.equal(line.seriesType(), 'Area');
    assert.deepEqual(line.data().map((p) => p.value), [100, 101, 99]);
    assert.equal(line.priceLines[0].price, 100.5, 'the previous close is marked');
    assert.equal(line.options.lineColor, view.colors.down, 'below the previous close: red');

    times.push(t0 + 15000);
    prices.push(102);
    view.push(t0 + 15000, 102);
    assert.equal(line.data().length, 4);
    assert.equal(line.options.lineColor, view.colors.up, 'back above the previous close: green');
    view.push(t0 + 15400, 102.5); // the same second: replaces the point
    assert.equal(line.data().length, 4);
    assert.equal(line.data()[3].value, 102.5);

    view.setKind('candles');
    assert.equal(lib.chart.series.length, 1, 'the line was removed');
    const candles = lib.chart.series[0];
    assert.equal(candles.seriesType(), 'Candlestick');
    assert.equal(view.interval, 30); // 5 s apart: 4 per candle -> 20 s -> 30 s
    assert.deepEqual(candles.data().map((c) => [c.open, c.high, c.low, c.close]), [[100, 102, 99, 102]]);
    view.push(t0 + 20000, 98); // same candle
    assert.deepEqual(candles.data().map((c) => [c.open, c.high, c.low, c.close]), [[100, 102, 98, 98]]);
    view.push(t0 + 31000, 97); // the next one
    assert.equal(candles.data().length, 2);
    assert.equal(candles.data()[1].open, 97);

    // the crosshair reads in exchange time, with the zone's name
    const formatter = lib.calls[0][2].localization.timeFormatter;
    assert.match(formatter(zonedSeconds(t0, NY)), /9:30:00\s?AM ET$/);

    view.destroy();
    assert.ok(lib.calls.includes('remove'));
});

test('chart view: a price older than the last one redraws instead of failing', () => {
    const lib = fakeLibrary();
    const view = new PriceChart(/** @type {any} */ ('el'), { library: lib, timeZone: NY });
    const t0 = at('2025-01-15T14:30:00Z');
    const times = [t0, t0 + 5000];
    const prices = [100, 101];
    view.show({ times, prices });
    times.splice(1, 0, t0 + 2000);
    prices.splice(1, 0, 100.5);
    view.push(t0 + 2000, 100.5);
    assert.deepEqual(lib.chart.series[0].data().map((p) => p.value), [100, 100.5, 101]);
});

test('chart: zonedInstant undoes zonedSeconds, across daylight saving changes', () => {
    for (const iso of ['2025-01-15T14:30:00Z', '2025-07-15T13:30:00Z', '2025-03-09T07:00:00Z', '2025-11-02T05:59:00Z']) {
        assert.equal(zonedInstant(zonedSeconds(at(iso), NY), NY), at(iso), iso);
    }
    assert.equal(zonedInstant(zonedSeconds(at('2025-07-15T00:00:00Z'), 'Asia/Kolkata'), 'Asia/Kolkata'), at('2025-07-15T00:00:00Z'));
});

/** Bars of `seconds` from `startIso`, closes rising by one. */
function bars(count, startIso = '2025-01-15T14:30:00Z', seconds = 60) {
    return Array.from({ length: count }, (_, i) => ({
        ms: at(startIso) + i * seconds * 1000,
        open: 100 + i,
        high: 102 + i,
        low: 99 + i,
        close: i % 2 ? 99.5 + i : 101 + i, // up, down, up…
        volume: 1000 * (i + 1),
        closed: true,
    }));
}

test('chart: bars become candles and a volume histogram in exchange time, coloured as their candle', () => {
    const colors = { up: '#00ff00', down: '#ff0000' };
    const { candles, volumes } = barPoints(bars(2), NY, colors);
    const open = zonedSeconds(at('2025-01-15T14:30:00Z'), NY);
    assert.deepEqual(candles, [
        { time: open, open: 100, high: 102, low: 99, close: 101 },
        { time: open + 60, open: 101, high: 103, low: 100, close: 100.5 },
    ]);
    assert.deepEqual(volumes, [
        { time: open, value: 1000, color: 'rgba(0, 255, 0, 0.45)' },
        { time: open + 60, value: 2000, color: 'rgba(255, 0, 0, 0.45)' },
    ]);
    assert.equal(intervalLabel(86400), '1D');
});

test('chart view: bars as candles over a volume pane, the newest in view, live and older bars drawn', () => {
    const lib = fakeLibrary();
    const view = new PriceChart(/** @type {any} */ ('el'), { library: lib, timeZone: NY, zoneLabel: 'ET', localZone: NY });
    let asked = 0;
    view.onScrollBack(() => asked++);
    const shown = bars(300);
    view.showBars({ bars: shown, seconds: 60 });
    const [candles, volume] = lib.chart.series;
    assert.equal(candles.seriesType(), 'Candlestick');
    assert.equal(candles.pane, 0);
    assert.equal(volume.seriesType(), 'Histogram');
    assert.equal(volume.pane, 1, 'volume in a pane of its own, with its own price scale');
    assert.equal(lib.chart.paneList[1].stretch, 0.3);
    assert.equal(candles.data().length, 300);
    assert.equal(volume.data().length, 300);
    assert.deepEqual(lib.timeScale.range, { from: 180, to: 301 }, 'the newest 120 bars in view');
    assert.equal(asked, 0);

    // the live bar: the last one updated, then a new one
    shown[299] = { ...shown[299], close: 500, high: 500, volume: 9 };
    view.updateBar('update');
    assert.equal(candles.data().length, 300);
    assert.equal(candles.data()[299].close, 500);
    assert.equal(volume.data()[299].value, 9);
    shown.push({ ...shown[299], ms: shown[299].ms + 60000, volume: 1 });
    view.updateBar('append');
    assert.equal(candles.data().length, 301);
    assert.equal(volume.data().length, 301);

    // scrolled to the left edge: asks for older bars; they go in front, the view stays on the same bars
    lib.timeScale.scrollTo(3, 120);
    assert.equal(asked, 1);
    shown.unshift(...bars(50, '2025-01-14T14:30:00Z'));
    view.barsPrepended(50);
    assert.equal(candles.data().length, 351);
    assert.deepEqual(candles.data()[0].time, zonedSeconds(at('2025-01-14T14:30:00Z'), NY));
    assert.deepEqual(lib.timeScale.range, { from: 53, to: 170 });
    assert.equal(asked, 1, 'no longer at the edge');

    // live prices do not touch bars; a daily chart reads dates on its crosshair
    view.push(Date.now(), 1);
    assert.equal(candles.data().length, 351);
    view.showBars({ bars: bars(3, '2025-01-13T05:00:00Z', 86400), seconds: 86400 });
    assert.equal(lib.chart.series.length, 2, 'the old series were removed');
    assert.match(view.timeLabel(zonedSeconds(at('2025-01-15T05:00:00Z'), NY)), /^Wed, Jan 15, 2025$/);
    // back to prices: one pane, no volume
    view.show({ times: [at('2025-01-15T14:30:00Z')], prices: [1], kind: 'line' });
    assert.equal(lib.chart.series.length, 1);
    assert.equal(view.volume, null);
});

test('chart view: the crosshair reads exchange time, and the browser time when it is another zone', () => {
    const lib = fakeLibrary();
    const view = new PriceChart(/** @type {any} */ ('el'), { library: lib, timeZone: NY, zoneLabel: 'ET', localZone: 'Asia/Tokyo', locale: 'en-US' });
    const t = zonedSeconds(at('2025-01-15T14:30:00Z'), NY); // 9:30 ET = 23:30 in Tokyo
    assert.match(view.timeLabel(t), /^Jan 15, 9:30:00\s?AM ET · 11:30\s?PM GMT\+9$/);
    view.showBars({ bars: bars(1), seconds: 60 });
    assert.match(view.timeLabel(t), /^Jan 15, 9:30\s?AM ET · 11:30\s?PM GMT\+9$/, 'bars: no seconds');
});
