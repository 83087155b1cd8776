// @ts-check
// Tests of the client's queue (web/static/js/client/queue.js): throttling, conflation, bounds, and
// must-deliver messages whose resume position is the last delivered seq.
// The fake socket, timers and requestAnimationFrame are in tests/js/fakes.js. Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { setup, price, pattern, ack, trigger, connectOpen, subscribeFrames, alertsSetup } from './fakes.js';

// ───────────────────────────── queue, throttling, conflation ─────────────────────────────

test('throttle: 50 price updates are delivered at most maxMessagesPerSecond per second', () => {
    const env = setup({ maxMessagesPerSecond: 10 });
    const got = [];
    const times = [];
    env.client.on('price_update', (m) => {
        got.push(m.ticker);
        times.push(env.clock.now);
    });
    const ws = connectOpen(env);
    const t0 = env.clock.now;
    for (let i = 0; i < 50; i++) ws.serverSend(price('T' + i, i, 1));
    assert.equal(got.length, 0, 'queued, not delivered synchronously');
    assert.equal(env.client.getStats().queueSize, 50);
    env.clock.tick(999);
    assert.equal(got.length, 10, 'ten in the first second');
    assert.equal(env.client.getStats().queueSize, 40);
    env.clock.tick(4000);
    assert.equal(got.length, 50);
    for (let i = 10; i < times.length; i++) assert.ok(times[i] - times[i - 10] >= 1000, `more than 10 within a second at ${i}`);
    assert.equal(times[0], t0, 'the first one goes at once');
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => 'T' + i), 'in arrival order');
    assert.equal(env.client.getStats().queueSize, 0);
});

test('throttle: a sliding window of one second never holds more than maxMessagesPerSecond deliveries', () => {
    const env = setup({ maxMessagesPerSecond: 4 });
    const times = [];
    env.client.on('*', () => times.push(env.clock.now));
    const ws = connectOpen(env);
    for (let i = 0; i < 30; i++) {
        ws.serverSend(pattern('P' + i, i + 1));
        env.clock.tick(37);
    }
    env.clock.tick(20000);
    assert.equal(times.length, 30);
    for (let i = 4; i < times.length; i++) assert.ok(times[i] - times[i - 4] >= 1000, `window at ${i}`);
});

test('throttle: control messages are handled at once, even with a backlog', () => {
    const env = setup({ maxMessagesPerSecond: 1 });
    const seen = [];
    env.client.on('*', (m) => seen.push(m.type));
    const ws = connectOpen(env);
    for (let i = 0; i < 5; i++) ws.serverSend(price('T' + i, i, 1));
    ws.serverSend({ type: 'pong', timestamp: 't' });
    ws.serverSend({ type: 'error', message: 'Unknown message type: x', code: 'unknown_type', timestamp: 't' });
    ws.serverSend({ type: 'subscription', action: 'subscribed', channel: 'patterns', streams: ['patterns'], timestamp: 't' });
    ws.serverSend({ type: 'connection', status: 'connected', connection_id: 'c', user_id: 'u', timestamp: 't' });
    ws.serverSend({ type: 'history', channel: 'patterns', messages: [], seq: 0, timestamp: 't' });
    assert.deepEqual(seen, ['pong', 'error', 'subscription', 'connection', 'history']);
    assert.equal(env.client.getStats().queueSize, 5);
});

test('conflation: a newer price of a queued ticker replaces the older one in place', () => {
    const env = setup({ maxMessagesPerSecond: 1 });
    const got = [];
    env.client.on('price_update', (m) => got.push(`${m.ticker}@${m.price}`));
    const ws = connectOpen(env);
    ws.serverSend(price('AAPL', 1));
    ws.serverSend(price('MSFT', 1));
    ws.serverSend(price('AAPL', 2));
    ws.serverSend(price('aapl', 3));
    assert.equal(env.client.getStats().queueSize, 2);
    env.clock.tick(5000);
    assert.deepEqual(got, ['aapl@3', 'MSFT@1'], 'tickers conflate case-insensitively');
    assert.equal(env.client.getStats().conflatedMessages, 2);
    // after delivery a new price is queued again, not merged into a delivered one
    ws.serverSend(price('AAPL', 4));
    env.clock.tick(5000);
    assert.deepEqual(got, ['aapl@3', 'MSFT@1', 'AAPL@4']);
});

test('conflation: the last price of a burst is always delivered', () => {
    const env = setup({ maxMessagesPerSecond: 10 });
    const last = new Map();
    let count = 0;
    env.client.on('price_update', (m) => {
        last.set(m.ticker, m.price);
        count++;
    });
    const ws = connectOpen(env);
    for (let i = 1; i <= 50; i++) {
        ws.serverSend(price('AAPL', i));
        ws.serverSend(price('TSLA', 1000 + i));
        env.clock.tick(13);
    }
    env.clock.tick(5000);
    assert.equal(last.get('AAPL'), 50);
    assert.equal(last.get('TSLA'), 1050);
    assert.ok(count <= Math.ceil(((50 * 13 + 5000) / 1000) * 10) + 1);
    assert.ok(count < 100, 'conflated');
});

test('queue bound: the oldest price update is dropped first; must-deliver messages never; control never queued', () => {
    const env = setup({ maxQueueSize: 3, maxMessagesPerSecond: 1 });
    const got = [];
    const label = (m) => (m.type === 'price_update' ? m.ticker : m.type === 'pattern_alert' ? 'pat' + m.seq : m.type);
    env.client.on('*', (m) => got.push(label(m)));
    const ws = connectOpen(env);
    ws.serverSend(pattern('A', 1));
    ws.serverSend(price('P1', 1));
    ws.serverSend(pattern('B', 2));
    assert.equal(env.client.getStats().queueSize, 3);
    ws.serverSend(price('P2', 1)); // full: the oldest price (P1) goes, not the older pattern
    ws.serverSend({ type: 'pong', timestamp: 't' }); // control: delivered at once, never queued
    let stats = env.client.getStats();
    assert.equal(stats.queueSize, 3);
    assert.equal(stats.droppedMessages, 1);
    assert.equal(stats.queueOverflows, 0);
    assert.deepEqual(got, ['pong']);
    env.clock.tick(10000);
    assert.deepEqual(got, ['pong', 'pat1', 'pat2', 'P2']);

    got.length = 0;
    ws.serverSend(pattern('C', 3));
    ws.serverSend(pattern('D', 4));
    ws.serverSend(pattern('E', 5));
    ws.serverSend(pattern('F', 6)); // full of must-deliver messages: the queue grows instead of losing one
    stats = env.client.getStats();
    assert.equal(stats.queueSize, 4);
    assert.equal(stats.queueOverflows, 1);
    ws.serverSend(price('P3', 1)); // full, no price queued to make room: the price is the one dropped
    stats = env.client.getStats();
    assert.equal(stats.queueSize, 4);
    assert.equal(stats.droppedMessages, 2);
    env.clock.tick(10000);
    assert.deepEqual(got, ['pat3', 'pat4', 'pat5', 'pat6']);
    stats = env.client.getStats();
    assert.equal(stats.droppedMessages, 2);
    assert.equal(stats.queueSize, 0);
    assert.ok(env.logger.records.some((r) => r.level === 'warn' && /queue full/.test(r.args[0])));
});

test('unsubscribe drops queued messages of its streams and forgets the resume position', () => {
    const env = setup({ maxMessagesPerSecond: 1 });
    const got = [];
    env.client.on('price_update', (m) => got.push(m.ticker));
    env.client.subscribe('ticker', 'AAPL');
    env.client.subscribe('ticker', 'MSFT');
    const ws = connectOpen(env);
    ws.serverSend(ack('ticker', ['ticker:AAPL'], 'AAPL'));
    ws.serverSend(ack('ticker', ['ticker:MSFT'], 'MSFT'));
    ws.serverSend(price('MSFT', 1, 1));
    ws.serverSend(price('AAPL', 1, 1));
    env.client.unsubscribe('ticker', 'AAPL');
    env.clock.tick(5000);
    assert.deepEqual(got, ['MSFT']);
    assert.deepEqual(env.client.getStats().streams, { 'ticker:MSFT': 1 });
    env.client.subscribe('ticker', 'AAPL');
    assert.deepEqual(ws.frames.at(-1), { type: 'subscribe', channel: 'ticker', ticker: 'AAPL' }, 'a fresh subscribe has no since');
});

test('disconnect() discards queued messages', () => {
    const env = setup({ maxMessagesPerSecond: 1 });
    const got = [];
    env.client.on('price_update', (m) => got.push(m.ticker));
    const ws = connectOpen(env);
    ws.serverSend(price('A', 1));
    ws.serverSend(price('B', 1));
    env.clock.tick(0);
    env.client.disconnect();
    env.clock.tick(5000);
    assert.deepEqual(got, ['A']);
    assert.equal(env.client.getStats().queueSize, 0);
});

// ───────────────────────────── must-deliver: the resume position is the last DELIVERED seq ─────────────────────────────

test('disconnect() (pagehide) with alerts still queued: resubscribing resumes after the last DELIVERED one', () => {
    const { env, got, ws } = alertsSetup({ maxMessagesPerSecond: 1 });
    for (let seq = 1; seq <= 5; seq++) ws.serverSend(trigger(seq));
    env.clock.tick(0);
    assert.deepEqual(got, ['r:1']);
    assert.deepEqual(env.client.getStats().streams, { alerts: 0, 'alerts:user:u1': 1 }, 'queued ones do not move the position');

    env.client.disconnect(1000, 'page hidden'); // what the dashboard does on pagehide
    env.clock.tick(10000);
    assert.deepEqual(got, ['r:1'], 'nothing delivered after disconnect()');
    assert.equal(env.client.getStats().queueSize, 0);

    env.client.connect(); // pageshow
    const ws2 = env.WS.last;
    assert.notEqual(ws2, ws);
    ws2.open();
    assert.deepEqual(subscribeFrames(ws2), [{ type: 'subscribe', channel: 'alerts', since: { alerts: 0, 'alerts:user:u1': 1 } }]);
    ws2.serverSend(ack('alerts', ['alerts', 'alerts:user:u1']));
    ws2.serverSend({ type: 'history', channel: 'alerts', messages: [], seq: 0, recovered: true, timestamp: 't' });
    ws2.serverSend({
        type: 'history',
        channel: 'alerts:user:u1',
        messages: [2, 3, 4, 5].map((n) => trigger(n)),
        seq: 5,
        recovered: true,
        timestamp: 't',
    });
    assert.deepEqual(got, ['r:1', 'replay r:2', 'replay r:3', 'replay r:4', 'replay r:5'], 'the replay is not mistaken for duplicates');
    assert.equal(env.client.getStats().duplicatesDropped, 0);
    assert.deepEqual(env.client.getStats().streams, { alerts: 0, 'alerts:user:u1': 5 });
});

test('queue overflow: must-deliver messages are never dropped; the queue grows and counts queueOverflows', () => {
    const { env, got, ws } = alertsSetup({ maxQueueSize: 3, maxMessagesPerSecond: 1 });
    for (let seq = 1; seq <= 6; seq++) ws.serverSend(trigger(seq));
    let stats = env.client.getStats();
    assert.equal(stats.queueSize, 6);
    assert.equal(stats.queueOverflows, 3);
    assert.equal(stats.droppedMessages, 0);
    assert.equal(stats.streams['alerts:user:u1'], 0, 'nothing delivered yet: the resume position has not moved');
    env.clock.tick(2500);
    assert.deepEqual(got, ['r:1', 'r:2', 'r:3']);
    assert.equal(env.client.getStats().streams['alerts:user:u1'], 3);
    env.clock.tick(10000);
    assert.deepEqual(got, ['r:1', 'r:2', 'r:3', 'r:4', 'r:5', 'r:6']);
    stats = env.client.getStats();
    assert.equal(stats.streams['alerts:user:u1'], 6);
    assert.equal(stats.queueSize, 0);
    assert.ok(env.logger.records.some((r) => r.level === 'warn' && /queue full/.test(r.args[0])));
});

test('a price update dropped from a full queue does not move the resume position; its replay is delivered', () => {
    const env = setup({ maxQueueSize: 2, maxMessagesPerSecond: 1 });
    const got = [];
    env.client.on('price_update', (m, info) => got.push((info.replayed ? 'replay ' : '') + m.ticker + ':' + m.seq));
    for (const t of ['A', 'B', 'C']) env.client.subscribe('ticker', t);
    const ws = connectOpen(env);
    for (const t of ['A', 'B', 'C']) ws.serverSend(ack('ticker', ['ticker:' + t], t));
    ws.serverSend(price('A', 1, 1));
    env.clock.tick(0);
    assert.deepEqual(got, ['A:1']);
    ws.serverSend(price('A', 2, 2));
    ws.serverSend(price('B', 1, 1));
    ws.serverSend(price('C', 1, 1)); // full: A:2, the oldest price, is dropped
    assert.equal(env.client.getStats().droppedMessages, 1);
    env.client.disconnect();
    assert.deepEqual(env.client.getStats().streams, { 'ticker:A': 1 });
    env.client.connect();
    const ws2 = env.WS.last;
    ws2.open();
    assert.deepEqual(subscribeFrames(ws2), [
        { type: 'subscribe', channel: 'ticker', ticker: 'A', since: 1 },
        { type: 'subscribe', channel: 'ticker', ticker: 'B' },
        { type: 'subscribe', channel: 'ticker', ticker: 'C' },
    ]);
    ws2.serverSend({ type: 'history', channel: 'ticker:A', ticker: 'A', messages: [price('A', 2, 2)], seq: 2, recovered: true, timestamp: 't' });
    assert.deepEqual(got, ['A:1', 'replay A:2']);
    assert.deepEqual(env.client.getStats().streams, { 'ticker:A': 2 });
});

test('duplicates of messages still waiting in the queue are dropped', () => {
    const env = setup({ maxMessagesPerSecond: 1 });
    const got = [];
    env.client.on('pattern_alert', (m) => got.push(m.seq));
    const ws = connectOpen(env);
    ws.serverSend(pattern('A', 1));
    ws.serverSend(pattern('B', 2));
    ws.serverSend(pattern('C', 3));
    ws.serverSend(pattern('B', 2)); // waiting, not yet delivered
    ws.serverSend(pattern('A', 1));
    assert.equal(env.client.getStats().duplicatesDropped, 2);
    assert.equal(env.client.getStats().queueSize, 3);
    env.clock.tick(10000);
    assert.deepEqual(got, [1, 2, 3]);
    ws.serverSend(pattern('C', 3)); // delivered already
    env.clock.tick(10000);
    assert.deepEqual(got, [1, 2, 3]);
    assert.equal(env.client.getStats().duplicatesDropped, 3);
});

test('a reconnect while alerts are queued delivers each exactly once: the queue first, then the replay', () => {
    const { env, got, ws } = alertsSetup({ maxMessagesPerSecond: 1 });
    for (let seq = 1; seq <= 4; seq++) ws.serverSend(trigger(seq));
    env.clock.tick(0);
    assert.deepEqual(got, ['r:1']);
    ws.drop(1006);
    env.clock.tick(750); // backoff with random 0.5: the queue keeps draining meanwhile (one per second)
    const ws2 = env.WS.last;
    assert.notEqual(ws2, ws);
    ws2.open();
    assert.deepEqual(subscribeFrames(ws2)[0].since, { alerts: 0, 'alerts:user:u1': 1 });
    ws2.serverSend(ack('alerts', ['alerts', 'alerts:user:u1']));
    ws2.serverSend({ type: 'history', channel: 'alerts', messages: [], seq: 0, recovered: true, timestamp: 't' });
    ws2.serverSend({ type: 'history', channel: 'alerts:user:u1', messages: [2, 3, 4, 5].map((n) => trigger(n)), seq: 5, recovered: true, timestamp: 't' });
    env.clock.tick(10000);
    assert.deepEqual(got, ['r:1', 'r:2', 'r:3', 'r:4', 'replay r:5']);
    assert.equal(env.client.getStats().streams['alerts:user:u1'], 5);
});

test('a handler that disconnects during a history replay: the rest is not delivered, resume from the last delivered', () => {
    const env = setup();
    const got = [];
    env.client.on('pattern_alert', (m) => {
        got.push(m.seq);
        if (m.seq === 2) env.client.disconnect();
    });
    env.client.subscribe('patterns');
    const ws = connectOpen(env);
    ws.serverSend(ack('patterns', ['patterns']));
    ws.serverSend({ type: 'history', channel: 'patterns', messages: [1, 2, 3, 4].map((n) => pattern('X', n)), seq: 4, timestamp: 't' });
    assert.deepEqual(got, [1, 2]);
    assert.deepEqual(env.client.getStats().streams, { patterns: 2 });
    env.client.connect();
    const ws2 = env.WS.last;
    ws2.open();
    assert.deepEqual(subscribeFrames(ws2), [{ type: 'subscribe', channel: 'patterns', since: 2 }]);
});
