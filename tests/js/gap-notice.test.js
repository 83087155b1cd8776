// @ts-check
// Tests of the dashboard's "some alerts may be missing" notice (web/static/js/dashboard/gap-notice.js):
// its text from the client's `gap` events, which streams it speaks of, and what clears it.
// Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { GapNotice, gapKind, gapNoticeText } from '../../web/static/js/dashboard/gap-notice.js';

/** A notice on plain stand-in elements, applying frame work at once. */
function notice() {
    const dom = { gapNotice: { hidden: true }, gapText: { textContent: '' }, gapDismiss: {} };
    const n = new GapNotice({ dom, frame: { set: (_key, fn) => fn() } });
    return { n, dom };
}

/** The client's info for a gap of `stream`. */
const info = (stream, from, to, reloading = true) => ({ replayed: false, channel: stream, from, to, reloading, subscriptions: [] });

test('gap notice: the streams of the Activity list, in words', () => {
    assert.equal(gapKind('patterns'), 'pattern alerts');
    assert.equal(gapKind('alerts'), 'alert triggers');
    assert.equal(gapKind('alerts:user:u1'), 'alert triggers');
    assert.equal(gapKind('bars:AAPL:1m'), null);
    assert.equal(gapKind('watchlist'), null);
    assert.equal(gapNoticeText(new Map(), true), '');
});

test('gap notice: a gap of pattern alerts shows the range and that the list was reloaded', () => {
    const { n, dom } = notice();
    assert.equal(n.shown, false);
    n.onGap({}, info('patterns', 4, 18));
    assert.equal(dom.gapNotice.hidden, false);
    assert.equal(dom.gapText.textContent,
        'Some pattern alerts may be missing after a connection problem (patterns 4–18); the list was reloaded.');
});

test('gap notice: several streams are named together, a second gap of one widens its range', () => {
    const { n, dom } = notice();
    n.onGap({}, info('patterns', 4, 18));
    n.onGap({}, info('alerts:user:u1', 7, 7));
    n.onGap({}, info('alerts', 30, 31));
    n.onGap({}, info('patterns', 20, 25));
    assert.equal(dom.gapText.textContent,
        'Some pattern alerts and alert triggers may be missing after a connection problem '
        + '(patterns 4–25, your alerts 7, alerts 30–31); the list was reloaded.');
});

test('gap notice: without a reload it does not claim one', () => {
    const { n } = notice();
    n.onGap({}, info('alerts', 1, 2, false));
    assert.equal(n.text, 'Some alert triggers may be missing after a connection problem (alerts 1–2).');
});

test('gap notice: streams the Activity list does not show, and frames without a range, show nothing', () => {
    const { n, dom } = notice();
    n.onGap({}, info('bars:AAPL:1m', 1, 5));
    n.onGap({}, { replayed: false });
    assert.equal(n.shown, false);
    assert.equal(dom.gapNotice.hidden, true);
});

test('gap notice: an ok naming gaps keeps it; a complete ok or Dismiss clears it', () => {
    const { n, dom } = notice();
    n.onGap({}, info('patterns', 4, 18));
    n.onServiceStatus({ status: 'ok', complete: false }, { replayed: false, complete: false, gaps: ['patterns'] });
    n.onServiceStatus({ status: 'degraded' }, { replayed: false, complete: false, gaps: ['patterns'] });
    assert.equal(n.shown, true);
    n.onServiceStatus({ status: 'ok', complete: true }, { replayed: false, complete: true, gaps: [] });
    assert.equal(n.shown, false);
    assert.equal(dom.gapNotice.hidden, true);
    assert.equal(dom.gapText.textContent, '');
    n.onGap({}, info('alerts', 1, 2));
    assert.equal(dom.gapNotice.hidden, false);
    n.dismiss();
    assert.equal(dom.gapNotice.hidden, true);
});
