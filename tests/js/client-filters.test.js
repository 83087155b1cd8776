// @ts-check
// Tests of subscription filters in the client (web/static/js/client/subscriptions.js): the filter in the
// subscribe frame, kept across reconnects with `since`, replaced by setFilter(), and refused by the server.
// The fake socket and timers are in tests/js/fakes.js. Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { setup, recordEvents, pattern, ack, connectOpen, subscribeFrames } from './fakes.js';

const VCP8 = { pattern_type: { in: ['VCP'] }, score: { gte: 8 } };
const GAPS = { pattern_type: { in: ['GAP_UP', 'GAP_DOWN'] } };

/** The server's `subscription` reply, echoing `filter` as it now stands. */
function filteredAck(channel, streams, filter) {
    return { ...ack(channel, streams), filter };
}

function history(stream, messages, seq) {
    return { type: 'history', channel: stream, messages, seq, timestamp: 't' };
}

/** A pattern alert of one type and score. */
function alertOf(ticker, seq, patternType, score) {
    return { ...pattern(ticker, seq), pattern_type: patternType, score };
}

/** A client on an open socket subscribed to 'patterns' with `filter`, acknowledged, history up to `seq`. */
function subscribedWith(filter, seq = 0) {
    const env = setup();
    const got = [];
    env.client.on('pattern_alert', (m, info) => got.push((info.replayed ? 'replay ' : '') + m.seq));
    env.client.subscribe('patterns', null, null, { filter });
    const ws = connectOpen(env);
    ws.serverSend(filteredAck('patterns', ['patterns'], filter));
    ws.serverSend(history('patterns', [], seq));
    return { env, ws, got };
}

test('filter: the subscribe frame carries it, before open and after; {} and null are no filter; a non-object is refused', () => {
    const env = setup();
    assert.equal(env.client.subscribe('patterns', null, null, { filter: VCP8 }), true);
    assert.equal(env.client.subscribe('news', null, null, { filter: {} }), true);
    assert.equal(env.client.subscribe('market_status', null, null, { filter: null }), true);
    assert.equal(env.client.subscribe('alerts', null, null, /** @type {any} */ ({ filter: ['score'] })), false);
    assert.equal(env.client.subscribe('alerts', null, null, /** @type {any} */ ({ filter: 'score > 8' })), false);
    const ws = connectOpen(env);
    assert.deepEqual(ws.frames, [
        { type: 'subscribe', channel: 'patterns', filter: VCP8 },
        { type: 'subscribe', channel: 'news' },
        { type: 'subscribe', channel: 'market_status' },
    ]);
    // while open, and through send()
    assert.equal(env.client.subscribe('ticker', 'aapl', null, { filter: { price: { gt: 100 } } }), true);
    assert.equal(env.client.send({ type: 'subscribe', channel: 'bars', ticker: 'msft', interval: '1m', filter: { closed: { eq: true } } }), true);
    assert.deepEqual(ws.frames.slice(3), [
        { type: 'subscribe', channel: 'ticker', ticker: 'AAPL', filter: { price: { gt: 100 } } },
        { type: 'subscribe', channel: 'bars', ticker: 'MSFT', interval: '1m', filter: { closed: { eq: true } } },
    ]);
    assert.deepEqual(env.client.getFilter('patterns'), VCP8);
    assert.equal(env.client.getFilter('news'), null);
    assert.equal(env.client.getFilter('alerts'), undefined, 'refused: not subscribed');
});

test('filter: the client keeps a copy (changing the object given later changes nothing)', () => {
    const env = setup();
    const filter = { score: { gte: 8 } };
    env.client.subscribe('patterns', null, null, { filter });
    filter.score.gte = 1;
    const ws = connectOpen(env);
    assert.deepEqual(ws.frames, [{ type: 'subscribe', channel: 'patterns', filter: { score: { gte: 8 } } }]);
});

test('filter: after a reconnect the subscription is sent again with its filter and since', () => {
    const { env, ws, got } = subscribedWith(VCP8, 5);
    ws.serverSend(alertOf('AAPL', 7, 'VCP', 9)); // the stream's 6 did not match: a gap, no loss
    env.clock.tick(1000);
    assert.deepEqual(got, ['7']);

    ws.drop(1006);
    env.clock.tick(1000);
    const ws2 = env.WS.last;
    assert.notEqual(ws2, ws);
    ws2.open();
    assert.deepEqual(subscribeFrames(ws2), [{ type: 'subscribe', channel: 'patterns', filter: VCP8, since: 7 }]);

    ws2.serverSend(filteredAck('patterns', ['patterns'], VCP8));
    ws2.serverSend({ ...history('patterns', [alertOf('MSFT', 9, 'VCP', 8.5)], 12), recovered: true });
    ws2.serverSend(alertOf('NVDA', 13, 'VCP', 8));
    env.clock.tick(1000);
    assert.deepEqual(got, ['7', 'replay 9', '13']);

    ws2.drop(1006); // the history's seq (12, the stream's newest) then the live 13: resume from 13
    env.clock.tick(2000);
    env.WS.last.open();
    assert.deepEqual(subscribeFrames(env.WS.last), [{ type: 'subscribe', channel: 'patterns', filter: VCP8, since: 13 }]);
});

test('filter: the server history seq under a filter is the resume position, though nothing matched', () => {
    const { env, ws } = subscribedWith(VCP8, 40);
    ws.drop(1006);
    env.clock.tick(1000);
    env.WS.last.open();
    assert.deepEqual(subscribeFrames(env.WS.last), [{ type: 'subscribe', channel: 'patterns', filter: VCP8, since: 40 }]);
});

test('setFilter: unsubscribe then subscribe with the new filter and no since; the history comes again, handlers stay', () => {
    const { env, ws, got } = subscribedWith(VCP8, 5);
    const errors = recordEvents(env.client, ['error']);
    ws.serverSend(alertOf('AAPL', 7, 'VCP', 9));
    env.clock.tick(1000);
    const sent = ws.frames.length;

    assert.equal(env.client.setFilter('patterns', GAPS), true);
    assert.deepEqual(ws.frames.slice(sent), [
        { type: 'unsubscribe', channel: 'patterns' },
        { type: 'subscribe', channel: 'patterns', filter: GAPS },
    ]);
    assert.deepEqual(env.client.getFilter('patterns'), GAPS);
    assert.deepEqual(env.client.getStats().subscriptions, ['patterns'], 'still subscribed');

    // sent by the server before it read the unsubscribe: the old filter's, never delivered now
    ws.serverSend(alertOf('TSLA', 8, 'VCP', 9.5));
    ws.serverSend({ type: 'subscription', action: 'unsubscribed', channel: 'patterns', streams: ['patterns'], timestamp: 't' });
    ws.serverSend(filteredAck('patterns', ['patterns'], GAPS));
    ws.serverSend(history('patterns', [alertOf('AAPL', 3, 'GAP_UP', 5), alertOf('AMD', 6, 'GAP_DOWN', 4)], 8));
    ws.serverSend(alertOf('META', 9, 'GAP_UP', 7));
    env.clock.tick(1000);
    assert.deepEqual(got, ['7', 'replay 3', 'replay 6', '9'], 'the new history whole (3 is below the old position), nothing of the old filter after the call');
    assert.deepEqual(errors, []);

    // the same filter again (another key order): nothing to send
    const now = ws.frames.length;
    assert.equal(env.client.setFilter('patterns', { pattern_type: { in: ['GAP_UP', 'GAP_DOWN'] } }), true);
    assert.equal(ws.frames.length, now);

    // null: no filter; a resume after it carries none
    assert.equal(env.client.setFilter('patterns', null), true);
    assert.deepEqual(ws.frames.slice(now), [{ type: 'unsubscribe', channel: 'patterns' }, { type: 'subscribe', channel: 'patterns' }]);
    assert.equal(env.client.getFilter('patterns'), null);
});

test('setFilter: while disconnected it only changes what the next session sends (no since: the history is refetched)', () => {
    const { env, ws } = subscribedWith(VCP8, 5);
    ws.serverSend(alertOf('AAPL', 7, 'VCP', 9));
    env.clock.tick(1000);
    env.client.disconnect();
    assert.equal(env.client.setFilter('patterns', GAPS), true);
    env.client.connect();
    env.WS.last.open();
    assert.deepEqual(env.WS.last.frames, [{ type: 'subscribe', channel: 'patterns', filter: GAPS }]);
});

test('setFilter: without a subscription it subscribes; invalid arguments are refused', () => {
    const env = setup();
    const ws = connectOpen(env);
    assert.equal(env.client.setFilter('patterns', VCP8), true);
    assert.deepEqual(ws.frames, [{ type: 'subscribe', channel: 'patterns', filter: VCP8 }]);
    assert.equal(env.client.setFilter('patterns', /** @type {any} */ ([1])), false);
    assert.equal(env.client.setFilter('ticker', VCP8), false, 'the ticker channel needs a symbol');
    assert.equal(ws.frames.length, 1);
});

test('setFilter twice before the server answers: the first acknowledgement does not undo the second', () => {
    const { env, ws, got } = subscribedWith(VCP8, 5);
    env.client.setFilter('patterns', GAPS);
    env.client.setFilter('patterns', { score: { gte: 9 } });
    ws.serverSend({ type: 'subscription', action: 'unsubscribed', channel: 'patterns', streams: ['patterns'], timestamp: 't' });
    ws.serverSend(filteredAck('patterns', ['patterns'], GAPS));
    ws.serverSend(history('patterns', [alertOf('AAPL', 3, 'GAP_UP', 5)], 8));
    ws.serverSend(alertOf('AMD', 9, 'GAP_UP', 5)); // still GAPS': the newest filter is not acknowledged yet
    assert.deepEqual(env.client.getFilter('patterns'), { score: { gte: 9 } });
    ws.serverSend({ type: 'subscription', action: 'unsubscribed', channel: 'patterns', streams: ['patterns'], timestamp: 't' });
    ws.serverSend(filteredAck('patterns', ['patterns'], { score: { gte: 9 } }));
    ws.serverSend(history('patterns', [alertOf('NVDA', 4, 'VCP', 9.5)], 9));
    ws.serverSend(alertOf('META', 10, 'BREAKOUT', 9.1));
    env.clock.tick(1000);
    assert.deepEqual(got, ['replay 4', '10']);
});

test('invalid_filter: the error reaches the error handlers with the subscription, which is forgotten (not pending, not re-sent)', () => {
    const env = setup();
    const errors = recordEvents(env.client, ['error']);
    const ws = connectOpen(env);
    env.client.subscribe('ticker', 'AAPL');
    const bad = /** @type {any} */ ({ score: { near: 8 } }); // the server refuses it
    env.client.subscribe('patterns', null, null, { filter: bad });
    ws.serverSend(ack('ticker', ['ticker:AAPL'], 'AAPL'));
    const refusal = {
        type: 'error',
        code: 'invalid_filter',
        message: "Invalid filter: filter.score.near: unknown operator 'near': one of eq, ne, in, not_in, gt, gte, lt, lte, exists",
        timestamp: 't',
    };
    ws.serverSend(refusal);
    assert.equal(errors.length, 1);
    assert.deepEqual(errors[0].payload, refusal);
    assert.deepEqual(errors[0].info, { replayed: false, subscription: { channel: 'patterns', ticker: null, interval: null, filter: bad } });
    assert.deepEqual(env.client.getStats().subscriptions, ['ticker:AAPL']);
    assert.equal(env.client.getFilter('patterns'), undefined);

    ws.drop(1006);
    env.clock.tick(1000);
    env.WS.last.open();
    assert.deepEqual(subscribeFrames(env.WS.last), [{ type: 'subscribe', channel: 'ticker', ticker: 'AAPL' }], 'not sent again');

    // asking again (a corrected filter) sends it
    env.client.subscribe('patterns', null, null, { filter: VCP8 });
    assert.deepEqual(subscribeFrames(env.WS.last).at(-1), { type: 'subscribe', channel: 'patterns', filter: VCP8 });
});

test('refusals are tied to the subscribe they answer: frames are answered in order', () => {
    const env = setup();
    const errors = recordEvents(env.client, ['error']);
    const ws = connectOpen(env);
    env.client.subscribe('patterns', null, null, { filter: VCP8 });
    env.client.subscribe('news', null, null, { filter: { ticker: 'watchlist' } });
    env.client.subscribe('ticker', 'ZZZZ');
    ws.serverSend(filteredAck('patterns', ['patterns'], VCP8));
    ws.serverSend({ type: 'error', code: 'watchlist_unavailable', message: 'Watchlist unavailable for the filter: x', timestamp: 't' });
    ws.serverSend({ type: 'error', code: 'unknown_ticker', message: 'Unknown ticker: ZZZZ', timestamp: 't' });
    ws.serverSend({ type: 'error', code: 'history_unavailable', message: 'History unavailable for patterns: x', timestamp: 't' });
    assert.deepEqual(errors.map((e) => e.info.subscription && e.info.subscription.channel), ['news', 'ticker', undefined]);
    assert.deepEqual(env.client.getStats().subscriptions, ['patterns']);
});

test('subscribe again with another filter: the or of both, as the server makes it; its echo is kept and re-sent', () => {
    const { env, ws } = subscribedWith(VCP8, 5);
    assert.equal(env.client.subscribe('patterns', null, null, { filter: VCP8 }), true);
    assert.equal(subscribeFrames(ws).length, 1, 'the same filter, acknowledged: nothing to send');

    env.client.subscribe('patterns', null, null, { filter: GAPS });
    assert.deepEqual(subscribeFrames(ws).at(-1), { type: 'subscribe', channel: 'patterns', filter: GAPS, since: 5 }, 'the server ors it with its own');
    assert.deepEqual(env.client.getFilter('patterns'), { or: [VCP8, GAPS] });
    const echoed = { or: [VCP8, GAPS] };
    ws.serverSend(filteredAck('patterns', ['patterns'], echoed));
    ws.drop(1006);
    env.clock.tick(1000);
    env.WS.last.open();
    assert.deepEqual(subscribeFrames(env.WS.last), [{ type: 'subscribe', channel: 'patterns', filter: echoed, since: 5 }]);

    // unfiltered stays unfiltered
    env.client.subscribe('patterns');
    assert.equal(env.client.getFilter('patterns'), null);
    env.client.subscribe('patterns', null, null, { filter: VCP8 });
    assert.equal(env.client.getFilter('patterns'), null);
});

test('a widening subscribe refused (the or over the limits): the subscription keeps the filter the server kept', () => {
    const { env, ws } = subscribedWith(VCP8, 5);
    const errors = recordEvents(env.client, ['error']);
    env.client.subscribe('patterns', null, null, { filter: GAPS });
    ws.serverSend({ type: 'error', code: 'invalid_filter', message: "Invalid filter with this channel's earlier one: too many conditions", timestamp: 't' });
    assert.equal(errors[0].info.subscription.channel, 'patterns');
    assert.deepEqual(env.client.getStats().subscriptions, ['patterns'], 'still subscribed');
    assert.deepEqual(env.client.getFilter('patterns'), VCP8);
});

test('refusals: every frame is answered once, in order, so errors of pings and rate-limited frames shift nothing', () => {
    const env = setup();
    const errors = recordEvents(env.client, ['error']);
    const ws = connectOpen(env);
    env.client.send({ type: 'ping' });
    env.client.subscribe('ticker', 'AAPL'); // refused by the inbound rate limit: not a refusal of the subscription
    env.client.subscribe('patterns', null, null, { filter: VCP8 });
    env.client.send({ type: 'ping' });
    env.client.subscribe('news', null, null, { filter: /** @type {any} */ ({ score: { near: 1 } }) });
    const rateLimited = { type: 'error', code: 'rate_limited', message: 'Rate limit exceeded: at most 20 messages per second', timestamp: 't' };
    ws.serverSend({ type: 'pong', timestamp: 't' });
    ws.serverSend(rateLimited);
    ws.serverSend(filteredAck('patterns', ['patterns'], VCP8));
    ws.serverSend(rateLimited); // the second ping's
    ws.serverSend({ type: 'error', code: 'invalid_filter', message: "Invalid filter: filter.score.near: unknown operator 'near'", timestamp: 't' });
    assert.deepEqual(errors.map((e) => e.info.subscription ? e.info.subscription.channel : null), [null, null, 'news']);
    assert.deepEqual(env.client.getStats().subscriptions, ['ticker:AAPL', 'patterns'], 'the rate-limited one waits for the next session');
    ws.drop(1006);
    env.clock.tick(1000);
    env.WS.last.open();
    assert.deepEqual(subscribeFrames(env.WS.last), [
        { type: 'subscribe', channel: 'ticker', ticker: 'AAPL' },
        { type: 'subscribe', channel: 'patterns', filter: VCP8 },
    ]);
});
