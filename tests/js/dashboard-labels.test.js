// @ts-check
// Tests of what the dashboard says in words: event times in the exchange's zone with the browser's on
// hover (format.js fmtEventTime), and the statistics panel's labels (stats-panel.js).
// Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { fmtEventTime, zoneName } from '../../web/static/js/dashboard/format.js';
import { STAT_LABELS, StatsPanel, statLabel } from '../../web/static/js/dashboard/stats-panel.js';
import { WebSocketClient } from '../../web/static/js/websocket-client.js';

const norm = (/** @type {string} */ text) => text.replace(/\u202f/g, ' '); // ICU's narrow space before AM/PM
const NY = 'America/New_York';

test('event times read in the exchange zone, named, with both times labelled on hover', () => {
    const at = new Date('2025-12-02T15:31:05Z'); // 10:31:05 in New York (EST)
    const same = fmtEventTime(at, NY, new Date('2025-12-02T20:00:00Z'));
    assert.equal(norm(same.text), '10:31:05 AM ET');
    const [exchange, yours] = norm(same.title).split('\n');
    assert.equal(exchange, 'Exchange time: Tue, Dec 2, 10:31:05 AM EST');
    assert.match(yours, /^Your time: Tue, Dec 2, \d{1,2}:31:05 [AP]M \S+$/);
    // summer time too
    assert.equal(norm(fmtEventTime(new Date('2025-07-03T17:00:00Z'), NY, new Date('2025-07-03T18:00:00Z')).text), '1:00:00 PM ET');
    // an earlier exchange day names the day (as the market badge does)
    assert.equal(norm(fmtEventTime(at, NY, new Date('2025-12-04T15:00:00Z')).text), 'Tue 10:31 AM ET');
    assert.equal(norm(fmtEventTime(at, NY, new Date('2025-12-20T15:00:00Z')).text), 'Dec 2, 10:31 AM ET');
});

test('an exchange whose zone is unknown here: the browser time, its zone named, and only that on hover', () => {
    const at = new Date('2025-12-02T15:31:05Z');
    const shown = fmtEventTime(at, null, at);
    assert.ok(norm(shown.text).endsWith(' ' + zoneName(null, at)), shown.text);
    assert.match(norm(shown.title), /^Your time: Tue, Dec 2, /);
    assert.ok(!shown.title.includes('Exchange time'));
});

test('statistics have readable labels; an unknown one keeps its raw name', () => {
    assert.equal(statLabel('conflatedMessages'), 'Prices superseded (conflated)');
    assert.equal(statLabel('latencyMs'), 'Round trip (ping)');
    assert.equal(statLabel('someNewCounter'), 'someNewCounter');
    assert.equal(statLabel('toString'), 'toString', 'only the table, not Object properties');
    // every statistic the client reports (but the per-stream positions, not shown) has a label
    const reported = Object.keys(new WebSocketClient({ url: 'ws://localhost/api/ws' }).getStats()).filter((k) => k !== 'streams');
    assert.deepEqual(reported.filter((k) => !Object.prototype.hasOwnProperty.call(STAT_LABELS, k)), []);
});

test('the statistics panel lists labels, the raw name on hover, and unknown counters by name', () => {
    /** @type {any[]} */
    const nodes = [];
    const fakeEl = (/** @type {string} */ tag) => {
        const node = { tagName: tag, textContent: '', title: '', dataset: {} };
        nodes.push(node);
        return node;
    };
    /** @type {any} */ (globalThis).document = { createElement: fakeEl };
    const list = { items: /** @type {any[]} */ ([]), append(...n) { this.items.push(...n); } };
    const written = new Map();
    const panel = new StatsPanel({
        dom: { panel: { hidden: true }, list, toggle: { setAttribute() {} } },
        getStats: () => ({ messagesReceived: 12, latencyMs: 4, someNewCounter: 3, streams: {} }),
        writer: /** @type {any} */ ({ write: (node, text) => written.set(node.dataset.stat, text) }),
    });
    panel.render();
    const terms = list.items.filter((n) => n.tagName === 'dt').map((n) => [n.textContent, n.title]);
    assert.deepEqual(terms, [
        ['Messages received', 'messagesReceived'],
        ['Round trip (ping)', 'latencyMs'],
        ['someNewCounter', 'someNewCounter'],
    ]);
    assert.deepEqual(Object.fromEntries(written), { messagesReceived: '12', latencyMs: '4 ms', someNewCounter: '3' });
});
