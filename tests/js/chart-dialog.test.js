// @ts-check
// Tests of the chart dialog (web/static/js/dashboard/charts.js) in Node: bars from a fake loadBars and a fake
// bars channel, drawn on the stand-in chart library; paging back, live bars, the interval switch, the
// remembered interval, and the fall back on prices when the server has no history. The real library and
// page are driven in Chromium by tests/browser/test_chart_bars.py.
// Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { ChartDialog } from '../../web/static/js/dashboard/charts.js';
import { makeChartLibrary, makeElement } from './fakes.js';

const T0 = Date.parse('2025-01-15T14:30:00Z');
const STEP = { '1m': 60000, '5m': 300000, '15m': 900000, '1h': 3600000, '1d': 86400000 };

/** A bar message (REST or channel) of `interval` number `i` after T0. */
function bar(i, interval = '1m', extra = {}) {
    const close = 100 + i;
    return { time: new Date(T0 + i * STEP[interval]).toISOString(), open: 100, high: Math.max(100, close) + 1, low: Math.min(100, close) - 1, close, volume: 5 + i, ...extra };
}

/** A live bar on the channel. */
function live(i, interval = '1m', extra = {}) {
    return { type: 'bar', ticker: 'AAPL', interval, closed: false, seq: 1, channel: 'bars:AAPL:' + interval, ...bar(i, interval), ...extra };
}

/** A promise the test settles. */
function deferred() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
        resolve = res;
        reject = rej;
    });
    return { promise, resolve: /** @type {any} */ (resolve), reject: /** @type {any} */ (reject) };
}

/** A button of the dialog: its data-* and attributes. */
function button(data) {
    return { dataset: data, attributes: {}, setAttribute(name, value) { this.attributes[name] = value; } };
}

/** localStorage of a page, kept across dialogs as across reloads. */
function makeStorage() {
    const items = new Map();
    return {
        items,
        getItem: (k) => (items.has(k) ? items.get(k) : null),
        setItem: (k, v) => items.set(k, String(v)),
        removeItem: (k) => items.delete(k),
    };
}

/**
 * A ChartDialog on stand-in elements and the stand-in library: `load` answers each loadBars call (by
 * default a deferred the test settles: `server.requests`), the bars channel records who follows.
 */
function makeDialog({ storage = makeStorage() } = {}) {
    const lib = makeChartLibrary();
    const g = /** @type {any} */ (globalThis);
    g.LightweightCharts = lib;
    g.document = {};
    g.window = { localStorage: storage, getComputedStyle: () => ({ getPropertyValue: () => '#123456' }) };
    const server = {
        /** @type {{ticker: string, interval: string, before: string | null, answer: ReturnType<typeof deferred>}[]} */
        requests: [],
        /** @type {{ticker: string, interval: string, onBar: (msg: any) => void, stopped: boolean}[]} */
        streams: [],
        get following() {
            return this.streams.filter((s) => !s.stopped).map((s) => s.ticker + ' ' + s.interval);
        },
        send(msg) {
            for (const s of this.streams) if (!s.stopped) s.onBar(msg);
        },
    };
    const dom = {
        chartDialog: { open: false, dataset: {}, showModal() { this.open = true; }, close() { this.open = false; } },
        chartCanvas: 'canvas',
        chartTitle: makeElement(),
        chartPrice: makeElement(),
        chartChange: makeElement(),
        chartNote: makeElement(),
        chartKinds: [button({ kind: 'line' }), button({ kind: 'candles' })],
        chartIntervals: ['1m', '5m', '15m', '1h', '1d'].map((interval) => button({ interval })),
        chartKindGroup: { hidden: false },
        chartIntervalGroup: { hidden: false },
    };
    const aapl = { ticker: 'AAPL', times: [T0, T0 + 5000], prices: [100, 101], last: { price: 101, change: 1, change_percent: 1 }, trend: 'up' };
    const dialog = new ChartDialog({
        dom,
        writer: /** @type {any} */ ({
            write(node, value, format) {
                node.textContent = format ? format(value) : String(value);
                return true;
            },
        }),
        frame: { set: (_key, fn) => fn() },
        row: (ticker) => (ticker === 'AAPL' ? aapl : undefined),
        exchange: () => 'XNYS',
        loadBars: (ticker, interval, before) => {
            const answer = deferred();
            server.requests.push({ ticker, interval, before, answer });
            return answer.promise;
        },
        subscribeBars: (ticker, interval, onBar) => {
            const stream = { ticker, interval, onBar, stopped: false };
            server.streams.push(stream);
            return () => (stream.stopped = true);
        },
        destroyed: () => false,
    });
    return { dialog, lib, server, dom, storage };
}

/** Let pending promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

const candles = (lib) => lib.chart.series.find((s) => s.seriesType() === 'Candlestick');
const volumes = (lib) => lib.chart.series.find((s) => s.seriesType() === 'Histogram');
const closes = (lib) => candles(lib).data().map((c) => c.close);

/** Open AAPL and answer its first page with bars `from`..`to`. */
async function openOn(env, from, to, interval = '1m') {
    const opened = env.dialog.open('AAPL');
    await settle();
    const request = env.server.requests[env.server.requests.length - 1];
    assert.deepEqual([request.ticker, request.interval, request.before], ['AAPL', interval, null]);
    const page = [];
    for (let i = from; i <= to; i++) page.push(bar(i, interval));
    request.answer.resolve({ ticker: 'AAPL', interval, bars: page });
    assert.equal(await opened, true);
}

test('chart dialog: opens on the newest page of bars, candles over volume, then follows the live bar', async () => {
    const env = makeDialog();
    const { dialog, lib, server, dom } = env;
    const opened = dialog.open('AAPL');
    await settle();
    assert.deepEqual(server.following, ['AAPL 1m'], 'the live bar is followed before the page is asked for');
    assert.match(dom.chartNote.textContent, /Loading AAPL 1m bars/);
    // a live bar that comes before the page is kept and merged after it
    server.send(live(3, '1m', { close: 120, high: 121 }));
    server.requests[0].answer.resolve({ ticker: 'AAPL', interval: '1m', bars: [bar(0), bar(1), bar(2), bar(3)] });
    assert.equal(await opened, true);
    assert.equal(dialog.mode, 'bars');
    assert.deepEqual(closes(lib), [100, 101, 102, 120]);
    assert.deepEqual(volumes(lib).data().map((v) => v.value), [5, 6, 7, 8]);
    assert.equal(dom.chartIntervalGroup.hidden, false);
    assert.equal(dom.chartKindGroup.hidden, true, 'line/candles is for prices only');
    assert.equal(dom.chartIntervals[0].attributes['aria-pressed'], 'true');
    assert.match(dom.chartNote.textContent, /^4 × 1m bars since .* ET · live$/);

    server.send(live(3, '1m', { close: 125, high: 126, volume: 50 })); // the open bar moves
    assert.deepEqual(closes(lib), [100, 101, 102, 125]);
    assert.equal(volumes(lib).data()[3].value, 50);
    server.send(live(3, '1m', { close: 126, high: 126, volume: 60, closed: true })); // closed: fixed
    server.send(live(3, '1m', { close: 1, low: 1 })); // cannot reopen
    assert.deepEqual(closes(lib), [100, 101, 102, 126]);
    server.send(live(4)); // the next period
    assert.deepEqual(closes(lib), [100, 101, 102, 126, 104]);
    assert.match(dom.chartNote.textContent, /^5 × 1m bars/);
    // other tickers' and intervals' bars, and malformed ones, are not this chart's
    server.send(live(5, '1m', { ticker: 'MSFT' }));
    server.send(live(5, '5m'));
    const warn = console.warn;
    console.warn = () => {};
    server.send(live(5, '1m', { close: 'x' }));
    console.warn = warn;
    assert.equal(candles(lib).data().length, 5);

    // closing stops following
    dialog.close();
    assert.deepEqual(server.following, []);
    assert.equal(dialog.ticker, null);
});

test('chart dialog: scrolling to the left edge loads older pages with before, one at a time, until an empty one', async () => {
    const env = makeDialog();
    const { dialog, lib, server, dom } = env;
    await openOn(env, 0, 199);
    assert.equal(server.requests.length, 1, 'the newest 120 bars are in view: nothing more asked');

    lib.timeScale.scrollTo(2, 100); // the user scrolls back
    lib.timeScale.scrollTo(1, 99); // and on, while the page loads
    assert.equal(server.requests.length, 2, 'one page at a time');
    assert.equal(server.requests[1].before, bar(0).time, 'the page before the oldest bar');
    assert.equal(server.requests[1].interval, '1m');
    server.requests[1].answer.resolve({ ticker: 'AAPL', interval: '1m', bars: [bar(-3), bar(-2), bar(-1), bar(0)] });
    await settle();
    assert.equal(candles(lib).data().length, 203);
    assert.equal(closes(lib)[0], 97);
    assert.deepEqual(lib.timeScale.range, { from: 4, to: 102 }, 'the view stays on the same bars');

    lib.timeScale.scrollTo(0, 90);
    assert.equal(server.requests[2].before, bar(-3).time);
    server.requests[2].answer.resolve({ ticker: 'AAPL', interval: '1m', bars: [] });
    await settle();
    assert.match(dom.chartNote.textContent, /the start of its history/);
    lib.timeScale.scrollTo(-5, 90);
    assert.equal(await dialog.loadOlder(), 0);
    assert.equal(server.requests.length, 3, 'history reaches no further: not asked again');
});

test('chart dialog: a failed older page says so and is not asked for again in a loop', async () => {
    const env = makeDialog();
    await openOn(env, 0, 9);
    const older = env.dialog.loadOlder();
    env.server.requests[1].answer.reject(new Error('HTTP 500'));
    assert.equal(await older, 0);
    assert.match(env.dom.chartNote.textContent, /older bars could not be loaded: HTTP 500/);
    env.lib.timeScale.scrollTo(0, 9);
    assert.equal(env.server.requests.length, 2);
});

test('chart dialog: switching the interval stops the old stream, loads the new one, and is remembered', async () => {
    const storage = makeStorage();
    const env = makeDialog({ storage });
    const { dialog, lib, server, dom } = env;
    await openOn(env, 0, 9);
    const switched = dialog.setInterval('5m');
    assert.deepEqual(server.following, ['AAPL 5m'], 'the 1m stream was stopped');
    assert.equal(dom.chartIntervals[1].attributes['aria-pressed'], 'true');
    assert.equal(storage.items.get('legend.chartInterval'), '5m');
    await settle();
    // a live 1m bar still in flight is not drawn on the 5m chart
    env.server.streams[0].onBar(live(10));
    // the switch goes on before the 5m page comes: the 5m answer is then ignored
    const again = dialog.setInterval('1h');
    assert.deepEqual(server.following, ['AAPL 1h']);
    server.requests[1].answer.resolve({ ticker: 'AAPL', interval: '5m', bars: [bar(0, '5m')] });
    assert.equal(await switched, '1h');
    await settle();
    server.requests[2].answer.resolve({ ticker: 'AAPL', interval: '1h', bars: [bar(0, '1h'), bar(1, '1h')] });
    assert.equal(await again, '1h');
    assert.equal(candles(lib).data().length, 2);
    assert.equal(candles(lib).data()[1].time - candles(lib).data()[0].time, 3600);
    server.send(live(2, '1h'));
    assert.equal(candles(lib).data().length, 3);
    await assert.rejects(dialog.setInterval('2m'), /unknown chart interval "2m": one of 1m, 5m, 15m, 1h, 1d/);
    assert.equal(dialog.interval, '1h');

    // a reload: the next page's dialog opens on the remembered interval
    const reloaded = makeDialog({ storage });
    assert.equal(reloaded.dialog.interval, '1h');
    await openOn(reloaded, 0, 4, '1h');
    assert.deepEqual(reloaded.server.following, ['AAPL 1h']);
    const back = reloaded.dialog.setInterval('1m');
    reloaded.server.requests[1].answer.resolve({ ticker: 'AAPL', interval: '1m', bars: [] });
    assert.equal(await back, '1m');
    assert.match(reloaded.dom.chartNote.textContent, /^No 1m bars of AAPL yet · live$/);
    assert.equal(storage.items.has('legend.chartInterval'), false, 'the default is not stored');
});

test('chart dialog: without history from the server it says so and draws the page prices as before', async () => {
    const env = makeDialog();
    const { dialog, lib, server, dom } = env;
    const opened = dialog.open('AAPL');
    await settle();
    server.requests[0].answer.reject(new Error('HTTP 404'));
    assert.equal(await opened, true);
    assert.equal(dialog.mode, 'ticks');
    assert.deepEqual(server.following, [], 'no bars to follow');
    assert.equal(lib.chart.series.length, 1);
    assert.equal(lib.chart.series[0].seriesType(), 'Area');
    assert.deepEqual(lib.chart.series[0].data().map((p) => p.value), [100, 101]);
    assert.match(dom.chartNote.textContent, /^No history from the server \(HTTP 404\) · 2 prices since .* ET · live$/);
    assert.equal(dom.chartKindGroup.hidden, false);
    assert.equal(dom.chartIntervalGroup.hidden, true);
    dialog.setKind('candles');
    assert.equal(lib.chart.series[0].seriesType(), 'Candlestick');
    // a malformed answer is a failure too
    dialog.close();
    const reopened = dialog.open('AAPL');
    await settle();
    server.requests[1].answer.resolve({ detail: 'oops' });
    assert.equal(await reopened, true);
    assert.match(dom.chartNote.textContent, /^No history from the server \(the history answer has no bars\)/);
});

/** The markers drawn now on the candles (the plugin attached to them). */
const marked = (lib) => {
    const plugin = lib.attached.find((p) => p.series === candles(lib));
    return plugin ? plugin.markers() : [];
};

test('chart dialog: marks (an alert preview) sit on the bars that hold them, appear as older bars load, and go when it closes', async () => {
    const env = makeDialog();
    const { dialog, lib, server, dom } = env;
    const at = (i, seconds = 0) => T0 + i * STEP['1m'] + seconds * 1000;
    const marks = [
        { ms: at(7, 59), price: 107.5 }, // within bar 7: on it
        { ms: at(2, 10), price: 102 },
        { ms: at(-2, 30), price: 98 }, // before the first bar shown: not drawn until older bars come
        { ms: at(60), price: 1 }, // after the last bar: never on a bar where nothing happened
    ];
    const shown = dialog.showMarkers('aapl', marks, 'preview alerts');
    await settle();
    server.requests[0].answer.resolve({ ticker: 'AAPL', interval: '1m', bars: Array.from({ length: 10 }, (_, i) => bar(i)) });
    assert.equal(await shown, true);
    const times = candles(lib).data().map((c) => c.time);
    assert.deepEqual(marked(lib).map((m) => [m.time, m.price, m.position, m.shape]), [
        [times[2], 102, 'atPriceTop', 'arrowDown'],
        [times[7], 107.5, 'atPriceTop', 'arrowDown'],
    ], 'in time order, each on its bar, pointing at its price');
    assert.match(dom.chartNote.textContent, / · 4 preview alerts marked \(1 before these bars: scroll back\)$/);

    // the user scrolls back: the older bars bring the earlier mark
    lib.timeScale.scrollTo(0, 9);
    server.requests[1].answer.resolve({ ticker: 'AAPL', interval: '1m', bars: [bar(-3), bar(-2), bar(-1)] });
    await settle();
    assert.deepEqual(marked(lib).map((m) => m.price), [98, 102, 107.5]);
    assert.equal(marked(lib)[0].time, candles(lib).data()[1].time, 'bar -2');
    assert.match(dom.chartNote.textContent, / · 4 preview alerts marked$/);
    const older = server.requests[2]; // the view still at the left edge asks for more: there is no more
    assert.equal(older.before, bar(-3).time);
    older.answer.resolve({ ticker: 'AAPL', interval: '1m', bars: [] });
    await settle();

    // another interval keeps them, on its own bars
    const switched = dialog.setInterval('5m');
    await settle();
    server.requests[3].answer.resolve({ ticker: 'AAPL', interval: '5m', bars: [bar(0, '5m'), bar(1, '5m')] });
    assert.equal(await switched, '5m');
    assert.deepEqual(marked(lib).map((m) => [m.time, m.price]), [
        [candles(lib).data()[0].time, 102],
        [candles(lib).data()[1].time, 107.5],
    ]);

    // closed: gone, and the chart opened again has none
    dialog.close();
    assert.equal(dialog.markers, null);
    assert.deepEqual(marked(lib), []);
    const reopened = dialog.open('AAPL');
    await settle();
    server.requests[4].answer.resolve({ ticker: 'AAPL', interval: '5m', bars: [bar(0, '5m'), bar(1, '5m')] });
    await reopened;
    assert.deepEqual(marked(lib), []);
    assert.doesNotMatch(dom.chartNote.textContent, /marked/);
});

test('chart dialog: marks on the page prices when there are no bars, and only on the ticker they are for', async () => {
    const env = makeDialog();
    const { dialog, lib, server, dom } = env;
    const shown = dialog.showMarkers('AAPL', [{ ms: T0 + 3000, price: 100.5 }, { ms: T0 - 60000, price: 99 }], 'preview alerts');
    await settle();
    server.requests[0].answer.reject(new Error('HTTP 404'));
    assert.equal(await shown, true);
    const line = lib.chart.series[0];
    const plugin = lib.attached.find((p) => p.series === line);
    assert.deepEqual(plugin.markers().map((m) => [m.time, m.price]), [[line.data()[0].time, 100.5]], 'on the price before it');
    assert.match(dom.chartNote.textContent, / · 2 preview alerts marked \(1 before these prices\)$/);
    // a ticker without a row cannot be charted: nothing is opened
    assert.equal(await dialog.showMarkers('MSFT', [{ ms: T0 }]), false);
});
