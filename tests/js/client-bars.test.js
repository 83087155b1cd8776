// @ts-check
// Tests of the client's bars channel: subscribeBars()/onBar(), the interval in every frame, resume per
// (ticker, interval), and the queue conflating open bars but never a closed one.
// The fake socket and timers are in tests/js/fakes.js. Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { setup, connectOpen, subscribeFrames } from './fakes.js';
import { WebSocketClient } from '../../web/static/js/websocket-client.js';

function bar(seq, close, closed = false, interval = '1m', time = '2026-03-02T14:30:00.000Z') {
    return {
        type: 'bar',
        ticker: 'AAPL',
        interval,
        time,
        open: 100,
        high: Math.max(100, close),
        low: Math.min(100, close),
        close,
        volume: 10,
        closed,
        channel: 'bars:AAPL:' + interval,
        seq,
    };
}

function barsAck(interval = '1m') {
    return {
        type: 'subscription',
        action: 'subscribed',
        channel: 'bars',
        ticker: 'AAPL',
        interval,
        streams: ['bars:AAPL:' + interval],
        timestamp: 't',
    };
}

test('subscribeBars sends the interval, each interval is a subscription of its own, onBar hears the bars', () => {
    const env = setup();
    const got = [];
    const off = env.client.onBar((m, info) => got.push(`${m.interval}:${m.close}:${m.closed}:${info.replayed}`));
    assert.equal(env.client.subscribeBars('aapl', '1m'), true);
    assert.equal(env.client.subscribe('bars', 'AAPL', '5m'), true);
    const ws = connectOpen(env);
    assert.deepEqual(subscribeFrames(ws), [
        { type: 'subscribe', channel: 'bars', ticker: 'AAPL', interval: '1m' },
        { type: 'subscribe', channel: 'bars', ticker: 'AAPL', interval: '5m' },
    ]);
    assert.deepEqual(env.client.getStats().subscriptions, ['bars:AAPL:1m', 'bars:AAPL:5m']);
    ws.serverSend(barsAck('1m'));
    ws.serverSend({ type: 'history', channel: 'bars:AAPL:1m', ticker: 'AAPL', interval: '1m', messages: [bar(1, 101, true)], seq: 1, timestamp: 't' });
    ws.serverSend(bar(2, 102));
    env.clock.tick(1000);
    assert.deepEqual(got, ['1m:101:true:true', '1m:102:false:false']);
    const sent = ws.sent.length;
    env.client.subscribeBars('AAPL', '1m'); // already subscribed and acknowledged
    assert.equal(ws.sent.length, sent);
    assert.equal(env.client.unsubscribeBars('AAPL', '1m'), true);
    assert.deepEqual(ws.frames.at(-1), { type: 'unsubscribe', channel: 'bars', ticker: 'AAPL', interval: '1m' });
    assert.deepEqual(env.client.getStats().subscriptions, ['bars:AAPL:5m']);
    off();
    assert.deepEqual(WebSocketClient.BAR_INTERVALS, ['1m', '5m', '15m', '1h', '1d']);
});

test('a bars subscription without a ticker or a known interval is refused; other channels take no interval', () => {
    const env = setup();
    assert.equal(env.client.subscribeBars('AAPL', '2m'), false);
    assert.equal(env.client.subscribe('bars', 'AAPL'), false);
    assert.equal(env.client.subscribe('bars', null, '1m'), false);
    assert.equal(env.client.subscribe('ticker', 'AAPL', '1m'), false);
    assert.deepEqual(env.client.getStats().subscriptions, []);
    assert.ok(env.logger.records.some((r) => String(r.args[0]).includes("'bars' channel needs an interval")));
});

test('after a reconnect a bars subscription resumes since the last seq of its stream', () => {
    const env = setup();
    env.client.subscribeBars('AAPL', '1m');
    let ws = connectOpen(env);
    ws.serverSend(barsAck());
    ws.serverSend({ type: 'history', channel: 'bars:AAPL:1m', messages: [], seq: 0, timestamp: 't' });
    ws.serverSend(bar(7, 101, true));
    env.clock.tick(1000);
    ws.drop();
    env.clock.tick(60_000);
    ws = env.WS.last;
    ws.open();
    assert.deepEqual(subscribeFrames(ws).at(-1), { type: 'subscribe', channel: 'bars', ticker: 'AAPL', interval: '1m', since: 7 });
});

test('the queue conflates open bars of a stream but never a closed one, and keeps seq order', () => {
    const env = setup({ maxMessagesPerSecond: 1 });
    const got = [];
    env.client.onBar((m) => got.push(`${m.seq}:${m.close}:${m.closed}`));
    env.client.subscribeBars('AAPL', '1m');
    const ws = connectOpen(env);
    ws.serverSend(barsAck());
    ws.serverSend({ type: 'history', channel: 'bars:AAPL:1m', messages: [], seq: 0, timestamp: 't' });
    ws.serverSend(bar(1, 101));
    ws.serverSend(bar(2, 102)); // replaces 1 in place
    ws.serverSend(bar(3, 103)); // replaces 2
    ws.serverSend(bar(4, 103, true)); // never conflated
    ws.serverSend(bar(5, 104, false, '1m', '2026-03-02T14:31:00.000Z')); // queues behind the closed bar
    ws.serverSend(bar(6, 105, false, '1m', '2026-03-02T14:31:00.000Z')); // replaces 5
    env.clock.tick(10_000);
    assert.deepEqual(got, ['3:103:false', '4:103:true', '6:105:false']);
    assert.equal(env.client.getStats().conflatedMessages, 3);
});
