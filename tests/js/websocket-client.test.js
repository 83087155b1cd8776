// @ts-check
// Tests of web/static/js/websocket-client.js against a fake socket, fake timers and a fake
// requestAnimationFrame. Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { WebSocketClient, computeBackoff, reconnectHint } from '../../web/static/js/websocket-client.js';
import { makeElement, makeFakeWebSocket, recordEvents, setup } from './fakes.js';

let nextSeq = 1;
function price(ticker, value, seq, extra = {}) {
    return {
        type: 'price_update',
        ticker,
        price: value,
        change: 0,
        change_percent: 0,
        volume: 1000,
        high: value,
        low: value,
        open: value,
        timestamp: '2025-11-18T10:30:00Z',
        channel: 'ticker:' + ticker,
        seq: seq === undefined ? nextSeq++ : seq,
        ...extra,
    };
}

function pattern(ticker, seq) {
    return {
        type: 'pattern_alert',
        ticker,
        pattern_type: 'VCP',
        score: 8.5,
        entry_price: 1,
        stop_price: 1,
        target_price: 2,
        risk_reward_ratio: 2,
        message: 'x',
        timestamp: '2025-11-18T10:30:00Z',
        channel: 'patterns',
        seq,
    };
}

function ack(channel, streams, ticker) {
    const msg = { type: 'subscription', action: 'subscribed', channel, streams, timestamp: '2025-11-18T10:30:00Z' };
    if (ticker) msg.ticker = ticker;
    return msg;
}

/** connect() and let the server accept. */
function connectOpen(env) {
    env.client.connect();
    const ws = env.WS.last;
    ws.open();
    return ws;
}

const subscribeFrames = (ws) => ws.frames.filter((f) => f.type === 'subscribe');

// ───────────────────────────── backoff ─────────────────────────────

test('computeBackoff: attempt 0 lies between reconnectDelay/2 and reconnectDelay', () => {
    const opts = { reconnectDelay: 1000, maxReconnectDelay: 30000, reconnectBackoffMultiplier: 1.5 };
    assert.equal(computeBackoff(0, opts, () => 0), 500);
    assert.equal(computeBackoff(0, opts, () => 0.5), 750);
    assert.equal(computeBackoff(0, opts, () => 0.999999), 1000);
});

test('computeBackoff: the ceiling grows by the multiplier and is capped at maxReconnectDelay', () => {
    const opts = { reconnectDelay: 1000, maxReconnectDelay: 30000, reconnectBackoffMultiplier: 1.5 };
    const top = (n) => computeBackoff(n, opts, () => 0.999999999);
    assert.equal(top(1), 1500);
    assert.equal(top(2), 2250);
    assert.equal(top(3), 3375);
    assert.equal(top(9), 30000); // 1000 × 1.5^9 ≈ 38443, capped
    assert.equal(top(100), 30000);
    assert.equal(top(1e6), 30000); // 1.5^1e6 is Infinity: still capped
    assert.equal(computeBackoff(1e6, opts, () => 0), 15000);
    // other settings are honoured
    assert.equal(computeBackoff(2, { reconnectDelay: 100, maxReconnectDelay: 10000, reconnectBackoffMultiplier: 2 }, () => 0.999999), 400);
});

test('computeBackoff: every delay stays within [reconnectDelay/2, maxReconnectDelay] and varies with random', () => {
    const opts = { reconnectDelay: 1000, maxReconnectDelay: 30000, reconnectBackoffMultiplier: 1.5 };
    for (let attempt = 0; attempt < 40; attempt++) {
        const seen = new Set();
        for (const r of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999]) {
            const d = computeBackoff(attempt, opts, () => r);
            assert.ok(d >= 500 && d <= 30000, `attempt ${attempt} r ${r}: ${d}`);
            assert.ok(Number.isInteger(d));
            seen.add(d);
        }
        assert.ok(seen.size > 1, 'jitter must spread the delays');
    }
    // hostile inputs: negative attempts, a broken random source, missing options
    assert.equal(computeBackoff(-3, opts, () => 0), 500);
    assert.equal(computeBackoff(0, opts, () => NaN), 500);
    assert.equal(computeBackoff(0, opts, () => 7), 1000);
    const d = computeBackoff(0);
    assert.ok(d >= 500 && d <= 1000);
});

// ───────────────────────────── URL and exports ─────────────────────────────

test('url: user_id query parameter, token as bearer subprotocols, auto-detection from location', () => {
    const a = setup({ url: 'ws://h:1/api/ws', userId: 'user 1' });
    a.client.connect();
    assert.equal(a.WS.last.url, 'ws://h:1/api/ws?user_id=user%201');
    assert.equal(a.WS.last.protocols, undefined);

    const b = setup({ url: 'ws://h/api/ws?x=1', userId: 'u', token: 'eyJ.abc.def' });
    b.client.connect();
    assert.equal(b.WS.last.url, 'ws://h/api/ws?x=1&user_id=u');
    assert.deepEqual(b.WS.last.protocols, ['bearer', 'eyJ.abc.def']);

    const c = setup({ url: undefined, location: { protocol: 'https:', host: 'legend.example:8443' } });
    assert.equal(c.client.url, 'wss://legend.example:8443/api/ws');
    const d = setup({ url: undefined, location: { protocol: 'http:', host: 'localhost:8000' }, userId: 'user123' });
    assert.equal(d.client.url, 'ws://localhost:8000/api/ws?user_id=user123');
    assert.equal(d.client.getStats().url, d.client.url);

    // a token function is called at every connection attempt
    let n = 0;
    const e = setup({ token: () => 'tok' + ++n });
    connectOpen(e).drop(1006);
    e.clock.tick(60000);
    assert.deepEqual(e.WS.instances.map((w) => w.protocols), [['bearer', 'tok1'], ['bearer', 'tok2']]);
});

test('exports: import gives the API; loading the module (<script type="module">) sets window.WebSocketClient', () => {
    assert.equal(typeof WebSocketClient, 'function');
    assert.equal(WebSocketClient.computeBackoff, computeBackoff);
    assert.equal(globalThis.WebSocketClient, WebSocketClient, 'the global of a page');
    assert.equal(typeof globalThis.WebSocketClient.computeBackoff, 'function');
    const g = /** @type {any} */ (globalThis);
    g.location = { protocol: 'http:', host: 'example.test' }; // a page's window.location
    try {
        const client = new globalThis.WebSocketClient({ WebSocket: makeFakeWebSocket(), logger: null });
        assert.equal(client.url, 'ws://example.test/api/ws');
    } finally {
        delete g.location;
    }
});

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

// ───────────────────────────── reconnection ─────────────────────────────

test('no reconnect after disconnect(), even with a reconnect already scheduled', () => {
    const env = setup();
    const closes = recordEvents(env.client, ['close']);
    const ws = connectOpen(env);
    env.client.disconnect();
    assert.deepEqual(ws.closeCalls, [{ code: 1000, reason: 'Client disconnect' }]);
    assert.equal(closes.length, 1);
    assert.equal(env.client.getStats().state, 'closed');
    env.clock.tick(120000);
    assert.equal(env.WS.instances.length, 1);

    // drop, then disconnect while waiting to reconnect
    env.client.connect();
    env.WS.last.open();
    env.WS.last.drop(1006);
    assert.equal(env.client.getStats().reconnecting, true);
    env.client.disconnect();
    env.clock.tick(120000);
    assert.equal(env.WS.instances.length, 2);
    assert.equal(env.client.getStats().reconnecting, false);
    assert.equal(env.client.getStats().connected, false);
});

test('disconnect() with a close code a browser refuses still closes the socket', () => {
    // Browsers throw on close codes other than 1000 and 3000-4999 (1001 included) and on long reasons.
    const Base = makeFakeWebSocket();
    class BrowserSocket extends Base {
        close(code, reason) {
            if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
                throw new Error('InvalidAccessError: the close code must be 1000 or in 3000-4999');
            }
            super.close(code, reason);
        }
    }
    const env = setup({ WebSocket: BrowserSocket });
    env.client.connect();
    const ws = Base.last;
    ws.open();
    env.client.disconnect(1001, 'going away');
    assert.deepEqual(ws.closeCalls, [{ code: undefined, reason: undefined }]);
    assert.equal(env.client.state, 'closed');
});

test('binary frames are read as ArrayBuffer, which decodes synchronously', () => {
    const env = setup();
    const ws = connectOpen(env);
    assert.equal(ws.binaryType, 'arraybuffer');
    const seen = recordEvents(env.client, ['pong']);
    ws.onmessage({ data: new TextEncoder().encode('{"type":"pong","timestamp":"2025-11-18T10:30:00Z"}').buffer });
    assert.equal(seen.length, 1);
});

test('disconnect() called from a close handler prevents the reconnect', () => {
    const env = setup();
    env.client.on('close', () => env.client.disconnect());
    connectOpen(env).drop(1006);
    env.clock.tick(120000);
    assert.equal(env.WS.instances.length, 1);
    assert.equal(env.client.getStats().state, 'closed');
});

for (const code of [4401, 4403]) {
    test(`no reconnect after close code ${code}`, () => {
        const env = setup({ token: 'expired' });
        const states = [];
        env.client.on('statechange', (e) => states.push(e.state));
        const closes = recordEvents(env.client, ['close']);
        connectOpen(env).drop(code, 'unauthorized');
        env.clock.tick(120000);
        assert.equal(env.WS.instances.length, 1);
        assert.deepEqual(states, ['connecting', 'open', 'closed']);
        assert.deepEqual(closes[0].payload, { code, reason: 'unauthorized', wasClean: false });
        assert.equal(env.client.getStats().reconnectAttempts, 0);
    });
}

for (const code of [1001, 1006, 1011, 1012, 1013, 4408]) {
    test(`reconnect after close code ${code}`, () => {
        const env = setup();
        const reconnecting = recordEvents(env.client, ['reconnecting']);
        connectOpen(env).drop(code);
        assert.equal(reconnecting.length, 1);
        assert.deepEqual(reconnecting[0].payload, { attempt: 1, delay: 750 });
        env.clock.tick(749);
        assert.equal(env.WS.instances.length, 1, 'waits for the backoff delay');
        env.clock.tick(1);
        assert.equal(env.WS.instances.length, 2);
    });
}

const DRAINED = 'server shutting down; reconnect_after_ms=1000';

test('reconnectHint: reads reconnect_after_ms from a close reason, capped at maxReconnectDelay', () => {
    assert.equal(reconnectHint(DRAINED), 1000);
    assert.equal(reconnectHint('reconnect_after_ms=0'), 0);
    assert.equal(reconnectHint('server shutting down'), 0);
    assert.equal(reconnectHint(''), 0);
    assert.equal(reconnectHint(undefined), 0);
    assert.equal(reconnectHint('reconnect_after_ms=-5'), 0);
    assert.equal(reconnectHint('reconnect_after_ms=abc'), 0);
    assert.equal(reconnectHint('reconnect_after_ms=999999999'), 30000, 'never beyond maxReconnectDelay');
    assert.equal(reconnectHint('reconnect_after_ms=9000', { maxReconnectDelay: 5000 }), 5000);
    assert.equal(WebSocketClient.reconnectHint, reconnectHint);
});

test('drain: after 1001 with a hint the client waits the hint plus its jittered backoff, then backs off as usual', () => {
    const env = setup(); // random 0.5: the first backoff is 750 ms
    const reconnecting = recordEvents(env.client, ['reconnecting']);
    connectOpen(env).drop(1001, DRAINED);
    assert.deepEqual(reconnecting[0].payload, { attempt: 1, delay: 1750 });
    env.clock.tick(1749);
    assert.equal(env.WS.instances.length, 1, 'not before the hint and the backoff');
    env.clock.tick(1);
    assert.equal(env.WS.instances.length, 2);
    env.WS.last.drop(1006); // that attempt failed: the hint was for the close that carried it
    assert.deepEqual(reconnecting[1].payload, { attempt: 2, delay: 1125 });
});

test('drain: a crowd closed with the same hint reconnects spread over the jitter window, none before the hint', () => {
    const count = 300;
    const delays = [];
    for (let i = 0; i < count; i++) {
        const env = setup({ random: () => i / count });
        env.client.on('reconnecting', (e) => delays.push(e.delay));
        connectOpen(env).drop(1001, DRAINED);
    }
    // reconnectDelay 1000: each waits 1000 + [500, 1000] ms, evenly spread when random is
    assert.ok(Math.min(...delays) >= 1500 && Math.max(...delays) <= 2000);
    const perTenth = new Map();
    for (const d of delays) perTenth.set(Math.floor((d - 1500) / 50), (perTenth.get(Math.floor((d - 1500) / 50)) || 0) + 1);
    assert.equal(perTenth.size, 10, 'every 50 ms of the 500 ms window is used');
    assert.ok(Math.max(...perTenth.values()) <= 31, 'no 50 ms slice takes more than its share');
});

test('drain: the reconnect after a 1001 resumes every subscription with since', () => {
    const env = setup();
    env.client.subscribe('ticker', 'AAPL');
    const ws1 = connectOpen(env);
    ws1.serverSend(ack('ticker', ['ticker:AAPL'], 'AAPL'));
    ws1.serverSend({ type: 'history', channel: 'ticker:AAPL', ticker: 'AAPL', messages: [], seq: 0, timestamp: 't' });
    ws1.serverSend(price('AAPL', 151, 9));
    env.clock.tick(1000);
    ws1.drop(1001, DRAINED);
    env.clock.tick(1750);
    const ws2 = env.WS.last;
    assert.notEqual(ws2, ws1);
    ws2.open();
    assert.deepEqual(subscribeFrames(ws2), [{ type: 'subscribe', channel: 'ticker', ticker: 'AAPL', since: 9 }]);
});

test('reconnect: backoff grows over failed attempts, resets after a successful open, counts reconnects', () => {
    const env = setup({ random: () => 0.999999 });
    const delays = [];
    env.client.on('reconnecting', (e) => delays.push(e.delay));
    const states = [];
    env.client.on('statechange', (e) => states.push(e.state));
    connectOpen(env).drop(1006);
    for (let i = 0; i < 3; i++) {
        env.clock.tick(60000);
        env.WS.last.drop(1006); // refused before opening
    }
    assert.deepEqual(delays, [1000, 1500, 2250, 3375]);
    assert.equal(env.client.getStats().reconnectAttempts, 4);
    env.clock.tick(60000);
    const opened = recordEvents(env.client, ['open']);
    env.WS.last.open();
    assert.equal(opened[0].payload.reconnected, true);
    let stats = env.client.getStats();
    assert.equal(stats.reconnectAttempts, 0);
    assert.equal(stats.reconnects, 1);
    assert.equal(stats.connected, true);
    assert.equal(stats.reconnecting, false);
    assert.deepEqual(states, ['connecting', 'open', 'reconnecting', 'open']);
    env.WS.last.drop(1006);
    assert.equal(delays.at(-1), 1000, 'attempts start over after an open');
    stats = env.client.getStats();
    assert.equal(stats.reconnectAttempts, 1);
});

test('connect() while waiting to reconnect tries at once', () => {
    const env = setup();
    connectOpen(env).drop(1006);
    assert.equal(env.WS.instances.length, 1);
    env.client.connect();
    assert.equal(env.WS.instances.length, 2);
    env.clock.tick(60000);
    assert.equal(env.WS.instances.length, 2, 'the scheduled attempt was cancelled');
});

test('a WebSocket constructor that throws is counted and retried', () => {
    let fail = true;
    const WS = makeFakeWebSocket();
    class Flaky extends WS {
        constructor(url, protocols) {
            if (fail) throw new Error('SecurityError');
            super(url, protocols);
        }
    }
    const env = setup({ WebSocket: Flaky });
    env.client.connect();
    assert.equal(env.client.getStats().errors, 1);
    assert.equal(env.client.getStats().reconnecting, true);
    fail = false;
    env.clock.tick(60000);
    assert.equal(WS.instances.length, 1);
});

// ───────────────────────────── heartbeat ─────────────────────────────

test('heartbeat: ping every heartbeatInterval, latency measured from ping to pong', () => {
    const env = setup({ heartbeatInterval: 1000 });
    const ws = connectOpen(env);
    env.clock.tick(999);
    assert.equal(ws.frames.filter((f) => f.type === 'ping').length, 0);
    env.clock.tick(1);
    assert.deepEqual(ws.frames.at(-1), { type: 'ping' });
    env.clock.tick(42);
    ws.serverSend({ type: 'pong', timestamp: 't' });
    assert.equal(env.client.getStats().latencyMs, 42);
    env.clock.tick(958);
    assert.equal(ws.frames.filter((f) => f.type === 'ping').length, 2);
});

test('heartbeat: a connection silent for 2 × heartbeatInterval is closed and resumed', () => {
    const env = setup({ heartbeatInterval: 1000 });
    const closes = recordEvents(env.client, ['close']);
    const ws = connectOpen(env);
    env.clock.tick(1000);
    ws.serverSend({ type: 'pong', timestamp: 't' }); // alive at t=1000
    env.clock.tick(2000); // t=3000: silent for 2000 -> dead
    assert.equal(ws.closeCalls.length, 1);
    assert.equal(closes.length, 1);
    assert.equal(closes[0].payload.code, 4000);
    assert.equal(closes[0].payload.wasClean, false);
    assert.equal(env.client.getStats().reconnecting, true);
    env.clock.tick(1000);
    assert.equal(env.WS.instances.length, 2);
    ws.serverSend({ type: 'pong', timestamp: 't' }); // the old socket is ignored now
    assert.equal(env.client.getStats().messagesReceived, 1);
});

test('heartbeat: data messages keep the connection alive', () => {
    const env = setup({ heartbeatInterval: 1000 });
    const ws = connectOpen(env);
    for (let i = 0; i < 10; i++) {
        env.clock.tick(900);
        ws.serverSend(price('AAPL', 1 + i, 100 + i));
    }
    assert.equal(ws.closeCalls.length, 0);
    assert.equal(env.client.getStats().connected, true);
    assert.equal(env.WS.instances.length, 1);
});

test('heartbeat: the server announced timeout shortens the ping interval', () => {
    const env = setup({ heartbeatInterval: 30000 });
    const ws = connectOpen(env);
    ws.serverSend({ type: 'connection', status: 'connected', connection_id: 'c1', user_id: 'u', timestamp: 't', heartbeat_timeout: 10 });
    assert.equal(env.client.getStats().connectionId, 'c1');
    env.clock.tick(5000);
    assert.deepEqual(ws.frames.at(-1), { type: 'ping' });
});

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

function trigger(seq, stream = 'alerts:user:u1') {
    return {
        type: 'alert_trigger',
        ticker: 'AAPL',
        alert_type: 'breakout',
        alert_id: 'a' + seq,
        trigger_price: 1,
        current_price: 2,
        message: 'r:' + seq,
        timestamp: '2025-11-18T10:30:00Z',
        channel: stream,
        seq,
    };
}

/** A client subscribed to 'alerts' (two streams), acknowledged, with empty histories. */
function alertsSetup(options = {}) {
    const env = setup({ userId: 'u1', ...options });
    const got = [];
    env.client.on('alert_trigger', (m, info) => got.push((info.replayed ? 'replay ' : '') + m.message));
    env.client.subscribe('alerts');
    const ws = connectOpen(env);
    ws.serverSend(ack('alerts', ['alerts', 'alerts:user:u1']));
    ws.serverSend({ type: 'history', channel: 'alerts', messages: [], seq: 0, timestamp: 't' });
    ws.serverSend({ type: 'history', channel: 'alerts:user:u1', messages: [], seq: 0, timestamp: 't' });
    return { env, got, ws };
}

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

// ───────────────────────────── events ─────────────────────────────

test('on() returns a function that removes the handler; off() removes it too; * gets every message', () => {
    const env = setup();
    const a = [];
    const b = [];
    const all = [];
    const offA = env.client.on('news', (m) => a.push(m.headline));
    const handlerB = (m) => b.push(m.headline);
    env.client.on('news', handlerB);
    env.client.on('*', (m) => all.push(m.type));
    const ws = connectOpen(env);
    ws.serverSend({ type: 'news', headline: 'one', channel: 'news', seq: 1 });
    env.clock.tick(1000);
    offA();
    ws.serverSend({ type: 'news', headline: 'two', channel: 'news', seq: 2 });
    env.clock.tick(1000);
    env.client.off('news', handlerB);
    ws.serverSend({ type: 'news', headline: 'three', channel: 'news', seq: 3 });
    env.clock.tick(1000);
    ws.serverSend({ type: 'pong', timestamp: 't' });
    assert.deepEqual(a, ['one']);
    assert.deepEqual(b, ['one', 'two']);
    assert.deepEqual(all, ['news', 'news', 'news', 'pong']);
    assert.throws(() => env.client.on('news', 'not a function'), TypeError);
});

test('a throwing handler is counted and logged, and the others still run', () => {
    const env = setup();
    const got = [];
    env.client.on('price_update', () => {
        throw new Error('boom');
    });
    env.client.on('price_update', (m) => got.push(m.price));
    env.client.on('open', () => {
        throw new Error('open boom');
    });
    const ws = connectOpen(env);
    ws.serverSend(price('AAPL', 1));
    ws.serverSend(price('MSFT', 2));
    env.clock.tick(1000);
    assert.deepEqual(got, [1, 2]);
    const stats = env.client.getStats();
    assert.equal(stats.errors, 3);
    assert.equal(stats.connected, true);
    assert.equal(env.logger.records.filter((r) => r.level === 'error').length, 3);
});

test('invalid frames are counted as errors and do not stop the client', () => {
    const env = setup();
    const got = [];
    env.client.on('price_update', (m) => got.push(m.price));
    const ws = connectOpen(env);
    ws.serverSend('not json');
    ws.serverSend('[1,2]');
    ws.serverSend('{"no":"type"}');
    ws.serverSend(price('AAPL', 7));
    env.clock.tick(1000);
    assert.deepEqual(got, [7]);
    assert.equal(env.client.getStats().errors, 3);
    assert.equal(env.client.getStats().messagesReceived, 4);
});

test('server error messages are emitted and counted', () => {
    const env = setup();
    const errors = recordEvents(env.client, ['error']);
    const ws = connectOpen(env);
    ws.serverSend({ type: 'error', message: 'Unknown channel: nope', code: 'unknown_channel', timestamp: 't' });
    assert.equal(errors.length, 1);
    assert.equal(errors[0].payload.code, 'unknown_channel');
    assert.equal(env.client.getStats().errors, 1);
});

// ───────────────────────────── DOM batching and change detection ─────────────────────────────

test('batching: many updates are applied together in one animation frame', () => {
    const env = setup({ batchUpdateDelay: 100 });
    const elements = Array.from({ length: 100 }, () => makeElement());
    for (let i = 0; i < elements.length; i++) {
        assert.equal(env.client.updateElementIfChanged(elements[i], i), true);
    }
    assert.equal(env.raf.requested, 1, 'one frame requested for all of them');
    assert.equal(env.client.getStats().pendingUpdates, 100);
    assert.ok(elements.every((el) => el.writes === 0), 'nothing written before the frame');
    env.raf.runFrame();
    assert.ok(elements.every((el, i) => el.textContent === String(i) && el.writes === 1));
    const stats = env.client.getStats();
    assert.equal(stats.pendingUpdates, 0);
    assert.equal(stats.updatesApplied, 100);
    assert.equal(stats.cacheSize, 100);
});

test('batching: frames are requested no more often than every batchUpdateDelay ms', () => {
    const env = setup({ batchUpdateDelay: 100 });
    const el = makeElement();
    env.client.updateElementIfChanged(el, 1);
    env.raf.runFrame();
    env.clock.tick(10);
    env.client.updateElementIfChanged(el, 2);
    env.client.updateElementIfChanged(el, 3);
    assert.equal(env.raf.requested, 1, 'within batchUpdateDelay of the last frame: wait');
    env.clock.tick(89);
    assert.equal(env.raf.requested, 1);
    env.clock.tick(1);
    assert.equal(env.raf.requested, 2);
    env.raf.runFrame();
    assert.equal(el.textContent, '3');
    assert.equal(el.writes, 2, 'value 2 was superseded before the frame');
});

test('change detection: unchanged formatted values are not queued nor rewritten', () => {
    const env = setup();
    const el = makeElement();
    const fmt = (v) => `$${v.toFixed(2)}`;
    assert.equal(env.client.updateElementIfChanged(el, 150.251, fmt), true);
    assert.equal(env.client.updateElementIfChanged(el, 150.249, fmt), false, 'same text once formatted');
    env.raf.runFrame();
    assert.equal(el.textContent, '$150.25');
    env.clock.tick(1000);
    assert.equal(env.client.updateElementIfChanged(el, 150.25, fmt), false);
    assert.equal(env.raf.requested, 1, 'no frame for an unchanged value');
    assert.equal(env.client.updateElementIfChanged(el, 151, fmt), true);
    assert.equal(env.client.updateElementIfChanged(el, 150.25, fmt), true, 'back to the written value while 151 is pending');
    env.raf.runFrame();
    assert.equal(el.textContent, '$150.25');
    assert.equal(el.writes, 1, 'the element already showed that text: not rewritten');
    assert.equal(env.client.getStats().updatesApplied, 1);
    // a formatter that throws is counted and nothing is queued
    assert.equal(env.client.updateElementIfChanged(el, null, fmt), false);
    assert.equal(env.client.getStats().errors, 1);
    // no formatter: String(value), null → ''
    const el2 = makeElement('x');
    env.client.updateElementIfChanged(el2, null);
    env.clock.tick(1000);
    env.raf.runFrame();
    assert.equal(el2.textContent, '');
});

test('clearCache empties the cache: the next update of the same value is queued again', () => {
    const env = setup();
    const el = makeElement();
    env.client.updateElementIfChanged(el, 'a');
    env.raf.runFrame();
    assert.equal(env.client.getStats().cacheSize, 1);
    assert.equal(env.client.updateElementIfChanged(el, 'a'), false);
    env.client.clearCache();
    assert.equal(env.client.getStats().cacheSize, 0);
    assert.equal(env.client.updateElementIfChanged(el, 'a'), true);
});

test('the cache is bounded: the oldest entries are evicted', () => {
    const env = setup({ maxCacheSize: 3 });
    const els = Array.from({ length: 5 }, () => makeElement());
    els.forEach((el, i) => env.client.updateElementIfChanged(el, i));
    assert.equal(env.client.getStats().cacheSize, 3);
    env.raf.runFrame();
    assert.ok(els.every((el, i) => el.textContent === String(i)), 'evicted entries are still written');
    assert.equal(env.client.updateElementIfChanged(els[4], 4), false, 'recent entry kept');
    assert.equal(env.client.updateElementIfChanged(els[0], 0), true, 'oldest entry evicted');
    env.clock.tick(1000);
    env.raf.runFrame();
    assert.equal(els[0].writes, 1, 'not rewritten: the element already showed it');
});

test('elements removed from the page leave the cache after their write', () => {
    const env = setup();
    const el = makeElement();
    el.isConnected = false;
    env.client.updateElementIfChanged(el, 'x');
    env.raf.runFrame();
    assert.equal(el.textContent, 'x');
    assert.equal(env.client.getStats().cacheSize, 0);
});

/** A stand-in element that contains other elements (for forgetElements). */
function makeContainer(children) {
    const root = makeElement();
    root.contains = (node) => node === root || children.includes(node);
    return root;
}

test('forgetElement: a removed element leaves the cache and its pending write is dropped', () => {
    const env = setup();
    const a = makeElement();
    const b = makeElement();
    env.client.updateElementIfChanged(a, 'a');
    env.client.updateElementIfChanged(b, 'b');
    env.raf.runFrame();
    assert.equal(env.client.getStats().cacheSize, 2);
    assert.equal(env.client.forgetElement(a), true);
    assert.equal(env.client.getStats().cacheSize, 1);
    assert.equal(env.client.forgetElement(a), false, 'nothing left to forget');
    assert.equal(env.client.updateElementIfChanged(a, 'a'), true, 'forgotten: written again when shown again');
    env.client.forgetElement(a);
    env.clock.tick(1000);
    env.raf.runFrame();
    assert.equal(a.writes, 1, 'the pending write of a forgotten element is dropped');
    assert.equal(env.client.updateElementIfChanged(b, 'b'), false, 'other elements are kept');
});

test('forgetElements(root): a removed row and all its cells leave the cache; clearCache still clears all', () => {
    const env = setup();
    const cells = Array.from({ length: 6 }, () => makeElement());
    const row = makeContainer(cells);
    const other = makeElement();
    cells.forEach((c, i) => env.client.updateElementIfChanged(c, i));
    env.client.updateElementIfChanged(other, 'x');
    env.raf.runFrame();
    assert.equal(env.client.getStats().cacheSize, 7);
    assert.equal(env.client.forgetElements(row), 6);
    assert.equal(env.client.getStats().cacheSize, 1);
    assert.equal(env.client.updateElementIfChanged(other, 'x'), false);
    assert.equal(env.client.forgetElements(makeElement()), 0, 'an element without contains() forgets only itself');
    env.client.clearCache();
    assert.equal(env.client.getStats().cacheSize, 0);
});

test('without requestAnimationFrame the frame falls back to a timer', () => {
    const env = setup({ requestAnimationFrame: undefined });
    const el = makeElement();
    env.client.updateElementIfChanged(el, 'v');
    assert.equal(el.textContent, '');
    env.clock.tick(0);
    assert.equal(el.textContent, 'v');
});

// ───────────────────────────── stats ─────────────────────────────

test('getStats has every field of the spec with the right types, and the extras', () => {
    const env = setup();
    const fresh = env.client.getStats();
    assert.equal(fresh.lastMessageTime, null);
    const specExample = {
        connected: true,
        reconnecting: false,
        reconnectAttempts: 0,
        messagesReceived: 1250,
        messagesSent: 45,
        updatesApplied: 3800,
        reconnects: 1,
        errors: 0,
        lastMessageTime: '2025-11-18T10:30:00Z',
        subscriptions: ['ticker:AAPL', 'ticker:TSLA', 'patterns', 'alerts'],
        queueSize: 0,
        pendingUpdates: 0,
        cacheSize: 50,
    };
    env.client.subscribe('ticker', 'AAPL');
    env.client.subscribe('ticker', 'TSLA');
    env.client.subscribe('patterns');
    env.client.subscribe('alerts');
    const ws = connectOpen(env);
    env.clock.tick(1234);
    ws.serverSend({ type: 'pong', timestamp: 't' });
    env.client.updateElementIfChanged(makeElement(), 1);
    const stats = env.client.getStats();
    for (const [key, example] of Object.entries(specExample)) {
        assert.ok(key in stats, `missing ${key}`);
        if (key === 'lastMessageTime') continue;
        assert.equal(typeof stats[key], typeof example, key);
        assert.equal(Array.isArray(stats[key]), Array.isArray(example), key);
    }
    assert.equal(stats.lastMessageTime, new Date(env.clock.now).toISOString());
    assert.deepEqual(stats.subscriptions, specExample.subscriptions);
    assert.equal(stats.connected, true);
    assert.equal(stats.messagesReceived, 1);
    assert.equal(stats.messagesSent, 4);
    assert.equal(stats.pendingUpdates, 1);
    assert.equal(stats.cacheSize, 1);
    for (const extra of ['droppedMessages', 'duplicatesDropped', 'conflatedMessages']) assert.equal(typeof stats[extra], 'number', extra);
    assert.equal(stats.state, 'open');
    assert.equal(stats.latencyMs, null);
    assert.equal(stats.url, 'ws://test.local/api/ws');
    assert.doesNotThrow(() => JSON.stringify(stats));
});

test('destroy() disconnects and forgets handlers and pending writes', () => {
    const env = setup();
    const got = [];
    env.client.on('price_update', (m) => got.push(m));
    const ws = connectOpen(env);
    const el = makeElement();
    env.client.updateElementIfChanged(el, 'x');
    env.client.destroy();
    env.raf.runFrame();
    assert.equal(el.textContent, '');
    assert.equal(ws.closeCalls.length, 1);
    const stats = env.client.getStats();
    assert.equal(stats.pendingUpdates, 0);
    assert.equal(stats.state, 'closed');
    env.clock.tick(60000);
    assert.equal(env.WS.instances.length, 1);
});

test('tickers are upper-cased only when ASCII: a lookalike goes to the server as typed, never as a real symbol', () => {
    const env = setup();
    const ws = connectOpen(env);
    for (const lookalike of ['ıbm', 'ß', 'ﬀ', 'ſ']) {
        env.client.subscribe('ticker', lookalike);
        assert.deepEqual(ws.frames.at(-1), { type: 'subscribe', channel: 'ticker', ticker: lookalike });
    }
    assert.ok(!env.client.getStats().subscriptions.some((s) => ['ticker:IBM', 'ticker:SS', 'ticker:FF', 'ticker:S'].includes(s)));
});

test('service_status: handled at once (not throttled), remembered until ok or until the socket closes', () => {
    const env = setup({ maxMessagesPerSecond: 1 });
    const statuses = [];
    env.client.on('service_status', (m, info) => statuses.push([m.status, info.replayed]));
    env.client.subscribe('ticker', 'AAPL');
    const ws1 = connectOpen(env);
    assert.equal(env.client.serviceStatus, 'ok');
    ws1.serverSend(price('AAPL', 1, 1));
    ws1.serverSend(price('AAPL', 2, 2)); // the budget of this second is spent: queued
    const degraded = { type: 'service_status', status: 'degraded', component: 'backplane', reason: 'r', timestamp: 't' };
    ws1.serverSend(degraded);
    assert.deepEqual(statuses, [['degraded', false]], 'delivered at once, ahead of the queued price');
    assert.equal(env.client.serviceStatus, 'degraded');
    assert.equal(env.client.getStats().serviceStatus, 'degraded');
    ws1.serverSend({ ...degraded, status: 'ok' });
    assert.equal(env.client.serviceStatus, 'ok');
    ws1.serverSend(degraded);
    ws1.drop(1006); // the next server speaks for itself (and only when it is degraded)
    assert.equal(env.client.serviceStatus, 'ok');
    env.clock.tick(1000);
    env.WS.last.open();
    assert.equal(env.client.serviceStatus, 'ok');
    assert.deepEqual(statuses.map((s) => s[0]), ['degraded', 'ok', 'degraded']);
});
