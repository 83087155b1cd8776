// @ts-check
// Tests of the client's entry (web/static/js/websocket-client.js, client/client.js): URL and exports,
// events, DOM batching and change detection, stats.
// The fake socket, timers and requestAnimationFrame are in tests/js/fakes.js. Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { WebSocketClient, computeBackoff } from '../../web/static/js/websocket-client.js';
import { makeFakeWebSocket, makeElement, setup, recordEvents, price, connectOpen, makeContainer } from './fakes.js';

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
