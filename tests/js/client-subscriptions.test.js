// @ts-check
// Tests of the client's subscriptions (web/static/js/client/subscriptions.js): subscribing, and the
// resume after a reconnect.
// The fake socket, timers and requestAnimationFrame are in tests/js/fakes.js. Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { setup, recordEvents, price, pattern, ack, connectOpen, subscribeFrames } from './fakes.js';

// ───────────────────────────── connecting and subscribing ─────────────────────────────

test('connect: subscriptions made before open are sent on open, tickers upper-cased, states reported', () => {
    const env = setup();
    const states = [];
    env.client.on('statechange', (e) => states.push(e.state));
    const opened = recordEvents(env.client, ['open']);
    assert.equal(env.client.subscribe('ticker', 'aapl'), true);
    assert.equal(env.client.subscribe('patterns'), true);
    assert.equal(env.client.subscribe('news'), true); // a plugin channel
    assert.equal(env.WS.instances.length, 0, 'no socket before connect()');

    env.client.connect();
    const ws = env.WS.last;
    assert.equal(env.client.getStats().connected, false);
    assert.deepEqual(ws.sent, [], 'nothing is sent before open');
    ws.open();
    assert.deepEqual(ws.frames, [
        { type: 'subscribe', channel: 'ticker', ticker: 'AAPL' },
        { type: 'subscribe', channel: 'patterns' },
        { type: 'subscribe', channel: 'news' },
    ]);
    assert.deepEqual(states, ['connecting', 'open']);
    assert.equal(opened.length, 1);
    assert.equal(opened[0].payload.reconnected, false);
    const stats = env.client.getStats();
    assert.equal(stats.connected, true);
    assert.equal(stats.messagesSent, 3);
    assert.deepEqual(stats.subscriptions, ['ticker:AAPL', 'patterns', 'news']);

    env.client.connect(); // no second socket
    assert.equal(env.WS.instances.length, 1);
});

test('subscribe/unsubscribe while open are sent at once; invalid ones are refused', () => {
    const env = setup();
    const ws = connectOpen(env);
    env.client.subscribe('ticker', ' tsla ');
    assert.deepEqual(ws.frames.at(-1), { type: 'subscribe', channel: 'ticker', ticker: 'TSLA' });
    ws.serverSend(ack('ticker', ['ticker:TSLA'], 'TSLA'));
    const before = ws.sent.length;
    env.client.subscribe('ticker', 'TSLA'); // already subscribed and acknowledged
    assert.equal(ws.sent.length, before);

    assert.equal(env.client.unsubscribe('ticker', 'tsla'), true);
    assert.deepEqual(ws.frames.at(-1), { type: 'unsubscribe', channel: 'ticker', ticker: 'TSLA' });
    assert.deepEqual(env.client.getStats().subscriptions, []);

    assert.equal(env.client.subscribe('ticker'), false, 'ticker channel needs a symbol');
    assert.equal(env.client.subscribe(''), false);
    assert.equal(ws.sent.length, before + 1);
});

test('send while disconnected: subscribe/unsubscribe update the local set, other messages are dropped', () => {
    const env = setup();
    assert.equal(env.client.send({ type: 'ping' }), false);
    assert.equal(env.client.send({ type: 'subscribe', channel: 'ticker', ticker: 'msft' }), true);
    assert.equal(env.client.send({ type: 'subscribe', channel: 'alerts' }), true);
    assert.equal(env.client.send({ type: 'unsubscribe', channel: 'alerts' }), true);
    assert.deepEqual(env.client.getStats().subscriptions, ['ticker:MSFT']);
    assert.equal(env.client.getStats().messagesSent, 0);
    const ws = connectOpen(env);
    assert.deepEqual(ws.frames, [{ type: 'subscribe', channel: 'ticker', ticker: 'MSFT' }]);
    assert.equal(env.client.send({ type: 'ping' }), true);
    assert.deepEqual(ws.frames.at(-1), { type: 'ping' });
});

// ───────────────────────────── resume ─────────────────────────────

test('resume: after a drop the subscription is re-sent with an integer since; replay fills in, duplicates are dropped', () => {
    const env = setup();
    const prices = [];
    env.client.on('price_update', (m, info) => prices.push({ seq: m.seq, replayed: info.replayed }));
    const histories = recordEvents(env.client, ['history']);
    env.client.subscribe('ticker', 'AAPL');
    env.client.subscribe('patterns'); // never acknowledged, nothing seen: no since
    const ws1 = connectOpen(env);
    ws1.serverSend(ack('ticker', ['ticker:AAPL'], 'AAPL'));
    ws1.serverSend({ type: 'history', channel: 'ticker:AAPL', ticker: 'AAPL', messages: [price('AAPL', 150, 4)], seq: 4, timestamp: 't' });
    ws1.serverSend(price('AAPL', 151, 5));
    env.clock.tick(1000);
    ws1.serverSend(price('AAPL', 152, 7));
    env.clock.tick(1000);
    assert.deepEqual(prices.map((p) => p.seq), [4, 5, 7]);

    ws1.drop(1006);
    assert.equal(env.client.getStats().reconnecting, true);
    env.clock.tick(1000); // equal jitter with random 0.5: 750 ms
    assert.equal(env.WS.instances.length, 2);
    const ws2 = env.WS.last;
    ws2.open();
    assert.deepEqual(subscribeFrames(ws2), [
        { type: 'subscribe', channel: 'ticker', ticker: 'AAPL', since: 7 },
        { type: 'subscribe', channel: 'patterns' },
    ]);

    ws2.serverSend(ack('ticker', ['ticker:AAPL'], 'AAPL'));
    ws2.serverSend({
        type: 'history',
        channel: 'ticker:AAPL',
        ticker: 'AAPL',
        messages: [price('AAPL', 152, 7), price('AAPL', 153, 8), price('AAPL', 154, 9)],
        seq: 9,
        recovered: true,
        timestamp: 't',
    });
    assert.deepEqual(prices.slice(3), [{ seq: 8, replayed: true }, { seq: 9, replayed: true }], 'replay delivered at once, duplicate 7 skipped');
    assert.equal(histories.length, 2);
    assert.equal(histories[1].payload.recovered, true);

    ws2.serverSend(price('AAPL', 154, 9)); // already replayed
    ws2.serverSend(price('AAPL', 153, 8)); // older still
    ws2.serverSend(price('AAPL', 155, 10));
    env.clock.tick(5000);
    assert.deepEqual(prices.slice(5).map((p) => p.seq), [10]);
    assert.equal(env.client.getStats().duplicatesDropped, 3);

    // a gap (prices are conflated server-side) is fine: no resubscribe
    ws2.serverSend(price('AAPL', 160, 15));
    env.clock.tick(5000);
    assert.deepEqual(prices.at(-1), { seq: 15, replayed: false });
    assert.equal(subscribeFrames(ws2).length, 2, 'no resubscribe on a gap');
    assert.equal(env.client.getStats().reconnects, 1);
    assert.deepEqual(env.client.getStats().streams, { 'ticker:AAPL': 15 });
});

test('resume: a subscription with several streams is re-sent with since as an object', () => {
    const env = setup({ userId: 'u1' });
    const alerts = [];
    env.client.on('alert_trigger', (m) => alerts.push(m.seq));
    env.client.subscribe('alerts');
    env.client.subscribe('market_status');
    const ws1 = connectOpen(env);
    ws1.serverSend(ack('alerts', ['alerts', 'alerts:user:u1']));
    ws1.serverSend({ type: 'history', channel: 'alerts', messages: [], seq: 3, timestamp: 't' });
    ws1.serverSend({ type: 'history', channel: 'alerts:user:u1', messages: [], seq: 0, timestamp: 't' });
    ws1.serverSend(ack('market_status', ['market_status']));
    ws1.serverSend({ type: 'history', channel: 'market_status', messages: [], seq: 0, timestamp: 't' });
    ws1.serverSend({ type: 'alert_trigger', ticker: 'AAPL', alert_type: 'breakout', trigger_price: 1, current_price: 2, message: 'm', timestamp: 't', channel: 'alerts:user:u1', seq: 1 });
    env.clock.tick(1000);
    assert.deepEqual(alerts, [1]);

    ws1.drop(1012);
    env.clock.tick(2000);
    const ws2 = env.WS.last;
    assert.notEqual(ws2, ws1);
    ws2.open();
    assert.deepEqual(subscribeFrames(ws2), [
        { type: 'subscribe', channel: 'alerts', since: { alerts: 3, 'alerts:user:u1': 1 } },
        { type: 'subscribe', channel: 'market_status', since: 0 },
    ]);
});

test('resume: a stream that restarted below our position is followed again', () => {
    const env = setup();
    const seqs = [];
    env.client.on('price_update', (m) => seqs.push(m.seq));
    env.client.subscribe('ticker', 'AAPL');
    const ws1 = connectOpen(env);
    ws1.serverSend(ack('ticker', ['ticker:AAPL'], 'AAPL'));
    ws1.serverSend(price('AAPL', 1, 57));
    env.clock.tick(1000);
    ws1.drop(1001);
    env.clock.tick(2000);
    const ws2 = env.WS.last;
    ws2.open();
    assert.equal(subscribeFrames(ws2)[0].since, 57);
    // the (single, restarted) server is at seq 3 now
    ws2.serverSend({ type: 'history', channel: 'ticker:AAPL', messages: [price('AAPL', 2, 2), price('AAPL', 3, 3)], seq: 3, recovered: false, timestamp: 't' });
    ws2.serverSend(price('AAPL', 4, 4));
    env.clock.tick(1000);
    assert.deepEqual(seqs, [57, 2, 3, 4]);
});

test('resume: queued live messages of a stream are delivered before its history replay', () => {
    const env = setup({ maxMessagesPerSecond: 1 });
    const got = [];
    env.client.on('pattern_alert', (m, info) => got.push([m.seq, info.replayed]));
    env.client.subscribe('patterns');
    const ws = connectOpen(env);
    ws.serverSend(ack('patterns', ['patterns']));
    ws.serverSend(pattern('A', 1));
    ws.serverSend(pattern('B', 2));
    ws.serverSend(pattern('C', 3));
    env.clock.tick(0);
    assert.deepEqual(got, [[1, false]]);
    ws.serverSend({ type: 'history', channel: 'patterns', messages: [pattern('C', 3), pattern('D', 4)], seq: 4, timestamp: 't' });
    assert.deepEqual(got, [[1, false], [2, false], [3, false], [4, true]]);
    assert.equal(env.client.getStats().queueSize, 0);
});
