// @ts-check
// Tests of web/static/js/dashboard/bars.js: reading bars from the REST answer and the bars channel, pages
// put in front, live bars merged.
// Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { BarHistory, pageBars, parseBar, parseInterval } from '../../web/static/js/dashboard/bars.js';

const T0 = '2025-01-15T14:30:00Z';
const minute = (i) => new Date(Date.parse(T0) + i * 60000).toISOString();
const raw = (i, close = 100 + i, extra = {}) => ({ time: minute(i), open: 100, high: Math.max(100, close), low: Math.min(100, close), close, volume: 10 * i, ...extra });

test('bars: intervals and bars are read strictly', () => {
    assert.equal(parseInterval('5m'), '5m');
    assert.equal(parseInterval('1d'), '1d');
    assert.equal(parseInterval('1D'), null);
    assert.equal(parseInterval(undefined), null);
    assert.deepEqual(parseBar({ ...raw(1), closed: true }), { ms: Date.parse(minute(1)), open: 100, high: 101, low: 100, close: 101, volume: 10, closed: true });
    assert.equal(parseBar({ ...raw(1), close: '101' }), null);
    assert.equal(parseBar({ ...raw(1), time: 'yesterday' }), null);
    assert.equal(parseBar({ ...raw(1), volume: NaN }), null);
    assert.equal(parseBar(null), null);
});

test('bars: a page is sorted, one bar per start; a malformed answer is refused with the reason', () => {
    const page = pageBars({ ticker: 'AAPL', interval: '1m', bars: [raw(2), raw(0), raw(1), raw(2)] });
    assert.deepEqual(page.map((b) => b.ms), [0, 1, 2].map((i) => Date.parse(minute(i))));
    assert.throws(() => pageBars({ detail: 'Not Found' }), /has no bars/);
    assert.throws(() => pageBars({ bars: [raw(0), { time: minute(1) }] }), /malformed bar/);
});

test('bars: older pages go in front, only what is older; an empty page adds nothing', () => {
    const history = new BarHistory();
    history.reset(pageBars({ bars: [raw(10), raw(11)] }));
    assert.equal(history.prepend(pageBars({ bars: [raw(8), raw(9), raw(10)] })), 2, 'the overlap is not repeated');
    assert.deepEqual(history.bars.map((b) => b.close), [108, 109, 110, 111]);
    assert.equal(history.prepend([]), 0);
    assert.equal(history.prepend(pageBars({ bars: [raw(12)] })), 0, 'nothing newer goes in front');
});

test('bars: a live bar updates the last, a closed one fixes it, a new period appends', () => {
    const history = new BarHistory();
    history.reset(pageBars({ bars: [raw(0), raw(1)] }));
    const live = (i, close, closed = false) => history.apply(/** @type {any} */ (parseBar(raw(i, close, { closed }))));
    assert.equal(live(1, 150), 'update');
    assert.equal(history.bars[1].close, 150);
    assert.equal(live(1, 151, true), 'update', 'the server closes the bar');
    assert.equal(live(1, 999), null, 'a closed bar does not reopen');
    assert.equal(history.bars[1].close, 151);
    assert.equal(live(2, 152), 'append');
    assert.equal(live(0, 90, true), 'replace', 'an earlier bar corrected: redraw');
    assert.equal(history.bars[0].close, 90);
    assert.equal(live(-5, 1), null, 'before the history: not kept');
    assert.equal(live(5, 155), 'append');
    assert.equal(live(4, 154, true), 'replace', 'a period filled late goes in its place');
    assert.deepEqual(history.bars.map((b) => b.close), [90, 151, 152, 154, 155]);
    const empty = new BarHistory();
    assert.equal(empty.apply(/** @type {any} */ (parseBar(raw(3)))), 'append');
});
