// @ts-check
// Tests of the client's connection (web/static/js/client/connection.js): backoff, reconnection, drain
// hints, heartbeat.
// The fake socket, timers and requestAnimationFrame are in tests/js/fakes.js. Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { WebSocketClient, computeBackoff, reconnectHint } from '../../web/static/js/websocket-client.js';
import { makeFakeWebSocket, setup, recordEvents, price, ack, connectOpen, subscribeFrames } from './fakes.js';

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
