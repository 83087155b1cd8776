// @ts-check
// Tests of the dashboard's pattern settings (web/static/js/dashboard/pattern-settings.js): the filter they
// make, the same judgement on the page (what the Activity list keeps), and settings read back from storage.
// Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import {
    KNOWN_PATTERN_TYPES,
    MAX_PATTERN_TYPES,
    describePrefs,
    matchesPrefs,
    parsePrefs,
    patternFilter,
    typeLabel,
} from '../../web/static/js/dashboard/pattern-settings.js';

const ALL = { types: [], minScore: null, watchlistOnly: false };
const alert = (ticker, patternType, score) => ({ type: 'pattern_alert', ticker, pattern_type: patternType, score });

test('patternFilter: the protocol filter of the settings; none when they keep everything', () => {
    assert.equal(patternFilter(ALL), null);
    assert.deepEqual(patternFilter({ types: ['VCP'], minScore: 8, watchlistOnly: true }), {
        pattern_type: { in: ['VCP'] },
        score: { gte: 8 },
        ticker: 'watchlist',
    });
    assert.deepEqual(patternFilter({ ...ALL, minScore: 0 }), { score: { gte: 0 } }, 'a minimum of 0 still excludes scoreless alerts');
    assert.deepEqual(patternFilter({ ...ALL, types: ['GAP_UP', 'GAP_DOWN'] }), { pattern_type: { in: ['GAP_UP', 'GAP_DOWN'] } });
});

test('matchesPrefs: what the server filter would say (kinds never mix: a score "9" is no number)', () => {
    const prefs = { types: ['VCP'], minScore: 8, watchlistOnly: true };
    const onList = (t) => t === 'AAPL';
    assert.equal(matchesPrefs(prefs, alert('AAPL', 'VCP', 8), onList), true);
    assert.equal(matchesPrefs(prefs, alert('aapl', 'VCP', 9.5), onList), true, 'tickers compare upper-cased');
    assert.equal(matchesPrefs(prefs, alert('AAPL', 'VCP', 7.99), onList), false);
    assert.equal(matchesPrefs(prefs, alert('AAPL', 'BREAKOUT', 9), onList), false);
    assert.equal(matchesPrefs(prefs, alert('MSFT', 'VCP', 9), onList), false);
    assert.equal(matchesPrefs(prefs, alert('AAPL', 'VCP', '9'), onList), false);
    assert.equal(matchesPrefs(ALL, alert('MSFT', 'ANYTHING', null), onList), true);
    assert.equal(matchesPrefs(ALL, null, onList), false);
});

test('parsePrefs: storage read back; what is not understood is left at its default', () => {
    assert.deepEqual(parsePrefs(null), { ...ALL, seen: [] });
    assert.deepEqual(parsePrefs('junk'), { ...ALL, seen: [] });
    assert.deepEqual(parsePrefs({ types: ['VCP', 'VCP', ' GAP_UP ', 7, '', 'x'.repeat(65)], minScore: '8', watchlistOnly: 'yes' }), {
        types: ['VCP', 'GAP_UP'],
        minScore: null,
        watchlistOnly: false,
        seen: [],
    });
    assert.deepEqual(parsePrefs({ types: [], minScore: 7.5, watchlistOnly: true, seen: ['CUP_HANDLE'] }), {
        types: [],
        minScore: 7.5,
        watchlistOnly: true,
        seen: ['CUP_HANDLE'],
    });
    assert.equal(parsePrefs({ minScore: -1 }).minScore, null);
    assert.equal(parsePrefs({ minScore: NaN }).minScore, null);
    const many = Array.from({ length: 40 }, (_, i) => 'T' + i);
    assert.equal(parsePrefs({ types: many }).types.length, MAX_PATTERN_TYPES);
});

test('labels and summary: the known types read as words; the summary names what is kept', () => {
    assert.deepEqual(KNOWN_PATTERN_TYPES.map(typeLabel), ['Breakout', '52 week high', 'New high', 'Gap up', 'Gap down', 'VCP']);
    assert.equal(typeLabel('Cup with handle'), 'Cup with handle');
    assert.equal(describePrefs(ALL), 'All patterns');
    assert.equal(describePrefs({ types: ['VCP'], minScore: 8, watchlistOnly: false }), 'VCP · score ≥ 8');
    assert.equal(describePrefs({ types: ['VCP', 'GAP_UP', 'BREAKOUT'], minScore: null, watchlistOnly: true }), '3 types · watchlist');
});
