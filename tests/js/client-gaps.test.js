// @ts-check
// Tests of `gap` frames in the client (web/static/js/client/subscriptions.js, client.js): the stream is
// marked incomplete, handlers hear of it at once, the resume position moves past the lost range, the
// owning subscription is sent again without `since` (its filter kept) and the reloaded history is
// de-duplicated; a `service_status` ok that names gaps is no all-clear.
// The fake socket and timers are in tests/js/fakes.js. Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { WebSocketClient } from '../../web/static/js/websocket-client.js';
import { ack, alertsSetup, connectOpen, pattern, recordEvents, setup, subscribeFrames, trigger } from './fakes.js';

const VCP8 = { pattern_type: { in: ['VCP'] }, score: { gte: 8 } };

function history(stream, messages, seq) {
    return { type: 'history', channel: stream, messages, seq, timestamp: 't' };
}

function gap(stream, from, to) {
    return { type: 'gap', channel: stream, from_seq: from, to_seq: to, timestamp: '2025-11-18T10:31:00Z' };
}

/** A client subscribed to 'patterns' (with `filter`), acknowledged, history up to `seq`; `got` lists deliveries. */
function patternsAt(seq, filter = null) {
    const env = setup();
    const got = [];
    env.client.on('pattern_alert', (m, info) => got.push((info.replayed ? 'replay ' : '') + m.seq));
    env.client.subscribe('patterns', null, null, filter ? { filter } : null);
    const ws = connectOpen(env);
    ws.serverSend(filter ? { ...ack('patterns', ['patterns']), filter } : ack('patterns', ['patterns']));
    ws.serverSend(history('patterns', [], seq));
    return { env, ws, got };
}

test('gap: a control type, handled at once, not through the throttled queue', () => {
    assert.ok(WebSocketClient.CONTROL_TYPES.has('gap'));
    const { env, ws } = patternsAt(10);
    const events = recordEvents(env.client, ['gap', '*']);
    ws.serverSend(pattern('AAPL', 11)); // queued: delivered on the next drain
    ws.serverSend(gap('patterns', 12, 20));
    assert.deepEqual(events.map((e) => e.type + ':' + e.payload.type), ['gap:gap', '*:gap'], 'before the queued alert');
    assert.equal(env.client.getStats().queueSize, 1);
});

test('gap: the handlers get channel, from, to, that it reloads, and the owning subscription', () => {
    const { env, ws } = patternsAt(10, VCP8);
    const events = recordEvents(env.client, ['gap']);
    ws.serverSend(gap('patterns', 11, 18));
    assert.equal(events.length, 1);
    const { payload, info } = events[0];
    assert.equal(payload.from_seq, 11);
    assert.equal(info.replayed, false);
    assert.equal(info.channel, 'patterns');
    assert.equal(info.from, 11);
    assert.equal(info.to, 18);
    assert.equal(info.reloading, true);
    assert.deepEqual(info.subscriptions, [{ channel: 'patterns', ticker: null, interval: null, filter: VCP8 }]);
    assert.deepEqual(env.client.gaps, { patterns: { from: 11, to: 18 } });
    assert.deepEqual(env.client.getStats().gaps, { patterns: { from: 11, to: 18 } });
    assert.ok(env.logger.records.some((r) => r.level === 'warn' && String(r.args[0]).includes('patterns messages 11-18 are lost')));
});

test('gap: the resume position moves past to_seq; the subscription is sent again without since, filter kept', () => {
    const { env, ws } = patternsAt(10, VCP8);
    const before = subscribeFrames(ws).length;
    ws.serverSend(gap('patterns', 11, 18));
    assert.equal(env.client.getStats().streams.patterns, 18);
    const sent = subscribeFrames(ws).slice(before);
    assert.deepEqual(sent, [{ type: 'subscribe', channel: 'patterns', filter: VCP8 }], 'no since: the whole history');
});

test('gap: the reloaded history is de-duplicated; what follows is delivered once, in order', () => {
    const { env, ws, got } = patternsAt(10);
    ws.serverSend(gap('patterns', 11, 18));
    ws.serverSend(pattern('AAPL', 19)); // live, after the lost range
    env.clock.tick(1000);
    assert.deepEqual(got, ['19']);
    ws.serverSend(ack('patterns', ['patterns']));
    // the server's history holds only what follows the loss: 19 (already here), 20 and 21
    ws.serverSend(history('patterns', [pattern('AAPL', 19), pattern('AAPL', 20), pattern('AAPL', 21)], 21));
    assert.deepEqual(got, ['19', 'replay 20', 'replay 21']);
    assert.equal(env.client.getStats().duplicatesDropped, 1);
    ws.serverSend(pattern('AAPL', 21)); // a duplicate live copy
    ws.serverSend(pattern('AAPL', 22));
    env.clock.tick(1000);
    assert.deepEqual(got, ['19', 'replay 20', 'replay 21', '22']);
    assert.equal(env.client.getStats().streams.patterns, 22);
    // a reconnect resumes from there, with since again
    ws.drop(1006);
    env.clock.tick(2000);
    const again = env.WS.last;
    again.open();
    assert.deepEqual(subscribeFrames(again), [{ type: 'subscribe', channel: 'patterns', since: 22 }]);
});

test('gap: live messages older than the lost range, still on their way, are not taken for duplicates', () => {
    const { env, ws, got } = patternsAt(10);
    ws.serverSend(gap('patterns', 13, 18)); // the server sends the gap ahead of 11 and 12, still queued for us
    ws.serverSend(pattern('AAPL', 11));
    ws.serverSend(pattern('AAPL', 12));
    ws.serverSend(pattern('AAPL', 12)); // but a copy of one is still a duplicate
    ws.serverSend(pattern('AAPL', 19));
    env.clock.tick(1000);
    assert.deepEqual(got, ['11', '12', '19']);
    assert.equal(env.client.getStats().streams.patterns, 19);
    // once the history is here nothing older can come: the exception ends
    ws.serverSend(ack('patterns', ['patterns']));
    ws.serverSend(history('patterns', [pattern('AAPL', 19), pattern('AAPL', 20)], 20));
    ws.serverSend(pattern('AAPL', 12));
    env.clock.tick(1000);
    assert.deepEqual(got, ['11', '12', '19', 'replay 20']);
});

test('gap: a subscription of several streams reloads the gapped one only (since kept for the other)', () => {
    const { env, ws, got } = alertsSetup();
    ws.serverSend(trigger(3, 'alerts'));
    ws.serverSend(trigger(5));
    env.clock.tick(1000);
    assert.deepEqual(got, ['r:3', 'r:5']);
    const before = subscribeFrames(ws).length;
    ws.serverSend(gap('alerts:user:u1', 6, 9));
    assert.deepEqual(subscribeFrames(ws).slice(before), [{ type: 'subscribe', channel: 'alerts', since: { alerts: 3 } }]);
    assert.deepEqual(env.client.gaps, { 'alerts:user:u1': { from: 6, to: 9 } });
});

test('gap: while disconnected before the reload went out, the next session subscribes without since for it', () => {
    const { env, ws } = patternsAt(10);
    ws.serverSend(gap('patterns', 11, 18));
    ws.drop(1006); // before the history reply
    env.clock.tick(2000);
    const again = env.WS.last;
    again.open();
    assert.deepEqual(subscribeFrames(again), [{ type: 'subscribe', channel: 'patterns' }]);
});

test('gap: two gaps of one stream widen its range; unsubscribing forgets it', () => {
    const { env, ws } = patternsAt(10);
    ws.serverSend(gap('patterns', 11, 18));
    ws.serverSend(gap('patterns', 30, 40));
    assert.deepEqual(env.client.gaps, { patterns: { from: 11, to: 40 } });
    env.client.unsubscribe('patterns');
    assert.deepEqual(env.client.gaps, {});
});

test('gap: a frame without a stream or range is reported but changes nothing', () => {
    const { env, ws } = patternsAt(10);
    const events = recordEvents(env.client, ['gap']);
    const before = subscribeFrames(ws).length;
    ws.serverSend({ type: 'gap', channel: 'patterns', timestamp: 't' });
    assert.equal(events.length, 1);
    assert.equal(events[0].info.channel, undefined);
    assert.deepEqual(env.client.gaps, {});
    assert.equal(subscribeFrames(ws).length, before);
    assert.equal(env.client.getStats().streams.patterns, 10);
});

test('service_status: an ok that names gaps is not an all-clear; a complete ok clears them', () => {
    const { env, ws } = patternsAt(10);
    const events = recordEvents(env.client, ['service_status']);
    ws.serverSend({ type: 'service_status', status: 'degraded', component: 'backplane', reason: 'r', timestamp: 't' });
    ws.serverSend(gap('patterns', 11, 18));
    ws.serverSend({ type: 'service_status', status: 'ok', component: 'backplane', reason: 'r', timestamp: 't', complete: false, gaps: ['patterns'] });
    assert.equal(env.client.serviceStatus, 'ok');
    assert.deepEqual(events.map((e) => [e.payload.status, e.info.complete, e.info.gaps]), [
        ['degraded', false, []],
        ['ok', false, ['patterns']],
    ]);
    // after the reload the server has no gap open; the client still remembers the loss until a complete ok
    ws.serverSend(ack('patterns', ['patterns']));
    ws.serverSend(history('patterns', [], 18));
    assert.deepEqual(env.client.gaps, { patterns: { from: 11, to: 18 } });
    ws.serverSend({ type: 'service_status', status: 'ok', component: 'backplane', reason: 'r', timestamp: 't', complete: true });
    assert.deepEqual(events.slice(2).map((e) => [e.payload.status, e.info.complete, e.info.gaps]), [['ok', true, []]]);
    assert.deepEqual(env.client.gaps, {});
    // an ok of an older server (no `complete`) is complete; clearGaps() forgets them too
    ws.serverSend(gap('patterns', 19, 19));
    env.client.clearGaps('patterns');
    assert.deepEqual(env.client.gaps, {});
});
