// @ts-check
/**
 * Legend Realtime client — subscriptions and resume: the subscriptions the client keeps across
 * reconnects, the position (`seq`) of the last message delivered on each stream, the `since` sent when
 * subscribing again, duplicate detection, `history` replies (replay, then the resume position), and
 * `gap` frames (messages lost to this client: the stream is marked incomplete and its history reloaded).
 *
 * Subscriptions sends through the Connection and asks the MessageQueue what waits in it; the client
 * hands it each data message (accept(), then the queue) and each history reply.
 */

/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').ClientStats} ClientStats */
/** @typedef {import('./types.js').Log} Log */
/** @typedef {import('./connection.js').Connection} Connection */
/** @typedef {import('./queue.js').MessageQueue} MessageQueue */
/** @typedef {import('./types.js').Filter} Filter */
/** @typedef {import('./types.js').SubscribeOptions} SubscribeOptions */
/** @typedef {import('./types.js').SubscriptionInfo} SubscriptionInfo */
/** @typedef {import('./types.js').GapRange} GapRange */
/** @typedef {import('./types.js').GapInfo} GapInfo */
/**
 * @typedef {object} Subscription
 * @property {string} channel
 * @property {string | null} ticker
 * @property {string | null} interval
 * @property {string} key
 * @property {string[] | null} streams the server's streams, once acknowledged (kept across reconnects)
 * @property {Filter | null} filter the filter asked for (the server's echo once acknowledged); null: none
 * @property {Filter | null} served the filter of the server's last acknowledgement
 * @property {boolean} live acknowledged in this session, and not unsubscribed since
 */
/**
 * A frame sent in this session and not answered yet: a subscribe or unsubscribe (answered by a
 * `subscription` reply of that action and key, or an `error`), or another one (a ping: `pong` or `error`).
 * @typedef {{action: 'subscribed' | 'unsubscribed' | 'other', key: string}} Request
 */

import { BAR_INTERVALS } from './codes.js';

/**
 * The `error` codes that refuse a subscribe: the server subscribed nothing (or kept the subscription as it
 * was), and sending the same frame again gets the same answer (docs/protocol.md, "Errors").
 */
export const SUBSCRIBE_REFUSALS = new Set([
    'invalid_subscription',
    'unknown_ticker',
    'not_authorized',
    'subscription_limit',
    'invalid_filter',
    'watchlist_unavailable',
]);

/**
 * A filter as the client keeps it: a copy of a plain object with at least one key, or null (`{}`,
 * null and undefined are no filter). Undefined when `filter` is not a filter at all (an array, a string).
 * @param {unknown} filter
 * @returns {Filter | null | undefined}
 */
export function normalizeFilter(filter) {
    if (filter === null || filter === undefined) return null;
    if (typeof filter !== 'object' || Array.isArray(filter)) return undefined;
    if (Object.keys(filter).length === 0) return null;
    return /** @type {Filter} */ (JSON.parse(JSON.stringify(filter)));
}

/** The same text for equal JSON values whatever the order of their keys. */
function canonical(value) {
    if (Array.isArray(value)) return '[' + value.map(canonical).join(',') + ']';
    if (value && typeof value === 'object') {
        return '{' + Object.keys(value).sort().map((k) => JSON.stringify(k) + ':' + canonical(value[k])).join(',') + '}';
    }
    return JSON.stringify(value === undefined ? null : value);
}

/**
 * True when two filters (or nulls) are the same expression, key order aside.
 * @param {Filter | null} a
 * @param {Filter | null} b
 */
export function sameFilter(a, b) {
    if (a === null || b === null) return a === b;
    return canonical(a) === canonical(b);
}

/**
 * The filter of a subscription subscribed twice, as the server makes it: the `or` of both; unfiltered
 * when either is (a filter never narrows an unfiltered subscription).
 * @param {Filter | null} current
 * @param {Filter | null} added
 * @returns {Filter | null}
 */
export function eitherFilter(current, added) {
    if (current === null || added === null) return null;
    if (sameFilter(current, added)) return current;
    return { or: [current, added] };
}

/** An upper-cased, trimmed ticker symbol, or null when there is none. Only ASCII is upper-cased
 *  ('ıbm'.toUpperCase() is 'IBM'): anything else goes to the server as typed, which refuses it. */
export function normalizeTicker(ticker) {
    if (ticker === null || ticker === undefined) return null;
    const t = String(ticker).trim();
    if (t === '') return null;
    return /^[\x20-\x7e]*$/.test(t) ? t.toUpperCase() : t;
}

/**
 * The subscription key the stats use: 'ticker:AAPL', 'patterns', 'news:TSLA', 'bars:AAPL:1m'.
 * @param {string} channel
 * @param {string | null} [ticker]
 * @param {string | null} [interval] the `bars` channel's
 */
export function subscriptionKey(channel, ticker, interval) {
    const t = normalizeTicker(ticker);
    const key = t ? channel + ':' + t : String(channel);
    return typeof interval === 'string' && interval !== '' ? key + ':' + interval : key;
}

/** The stream a data message belongs to (its `channel`), or null. */
export function streamOf(msg) {
    if (typeof msg.channel === 'string' && msg.channel !== '') return msg.channel;
    if (msg.type === 'price_update' && typeof msg.ticker === 'string') return 'ticker:' + msg.ticker.toUpperCase();
    return null;
}

/** The message's `seq` when it is a finite number, else null. */
export function seqOf(msg) {
    return typeof msg.seq === 'number' && isFinite(msg.seq) ? msg.seq : null;
}

export class Subscriptions {
    /**
     * @param {object} parts
     * @param {Connection} parts.connection sends frames; tells whether it is open and which session is live
     * @param {MessageQueue} parts.queue the data messages waiting for delivery
     * @param {ClientStats} parts.stats the client's counters (duplicatesDropped)
     * @param {Log} parts.log
     * @param {(msg: Message, replayed: boolean) => void} parts.deliver hands a message to the handlers
     */
    constructor({ connection, queue, stats, log, deliver }) {
        this._connection = connection;
        this._queue = queue;
        this._stats = stats;
        this._log = log;
        this._deliver = deliver;
        /** @type {Map<string, Subscription>} key -> subscription, kept across reconnects */
        this._subs = new Map();
        /** @type {Map<string, number>} stream -> seq of the newest message DELIVERED to handlers: the resume position (`since`) */
        this._lastSeq = new Map();
        /** @type {Request[]} (un)subscribe frames of this session awaiting their answer, in the order sent */
        this._requests = [];
        /** @type {Set<string>} streams whose filter is being replaced: their live messages still follow the old one */
        this._muted = new Set();
        /** @type {Map<string, GapRange>} stream -> the messages lost to this client (a `gap`), until clearGaps() */
        this._gaps = new Map();
        /** @type {Set<string>} streams whose history is being reloaded after a gap: subscribed again without `since` */
        this._reloading = new Set();
        /**
         * @type {Map<string, {floor: number, below: number}>} stream -> live messages older than a gap
         * (seq in (floor, below)) still on their way, which the moved resume position must not drop
         */
        this._holes = new Map();
    }

    /** The streams that lost messages (`gap`), with the range lost: {stream: {from, to}}. */
    gaps() {
        /** @type {Record<string, GapRange>} */
        const gaps = {};
        for (const [stream, range] of this._gaps) gaps[stream] = { from: range.from, to: range.to };
        return gaps;
    }

    /**
     * Forget that streams lost messages (all, or `stream` only): the user was told, or the server said
     * everything arrived since.
     * @param {string} [stream]
     */
    clearGaps(stream) {
        if (stream === undefined) this._gaps.clear();
        else this._gaps.delete(stream);
    }

    /**
     * A `gap`: messages `from_seq`..`to_seq` of a stream are lost to this client (docs/protocol.md, "Gaps").
     * The stream is marked incomplete, its resume position moves past `to_seq` (nothing waits for the lost
     * range or asks for it again; live messages older than `from_seq` still on their way are let through),
     * and each subscription owning it is sent again without `since` for it, with its filter: the `history`
     * reply reloads it (what was delivered already is dropped as a duplicate). Returns the gap for the
     * handlers, or null when the frame names no stream or range.
     * @param {Message} msg
     * @returns {GapInfo | null}
     */
    gap(msg) {
        const stream = typeof msg.channel === 'string' && msg.channel !== '' ? msg.channel : null;
        const to = typeof msg.to_seq === 'number' && isFinite(msg.to_seq) ? msg.to_seq : null;
        if (!stream || to === null) return null;
        const from = typeof msg.from_seq === 'number' && isFinite(msg.from_seq) && msg.from_seq <= to ? msg.from_seq : to;
        const known = this._gaps.get(stream);
        this._gaps.set(stream, known ? { from: Math.min(known.from, from), to: Math.max(known.to, to) } : { from: from, to: to });

        const delivered = this._lastSeq.get(stream);
        const queued = this._queue.queuedSeq(stream);
        const seen = delivered === undefined ? queued : queued === undefined ? delivered : Math.max(delivered, queued);
        if (seen === undefined || seen < to) {
            if (seen === undefined || seen < from - 1) {
                const hole = this._holes.get(stream);
                this._holes.set(stream, { floor: hole ? hole.floor : seen === undefined ? -Infinity : seen, below: from });
            }
            this._lastSeq.set(stream, to);
        }

        /** @type {SubscriptionInfo[]} */
        const owners = [];
        let reloading = false;
        for (const sub of Array.from(this._subs.values())) {
            if (!this._streamsOf(sub).has(stream)) continue;
            owners.push({ channel: sub.channel, ticker: sub.ticker, interval: sub.interval, filter: sub.filter });
            if (this._muted.has(stream)) {
                reloading = true; // its filter is being replaced: that subscribe (without since) reloads it
                continue;
            }
            if (this._connection.state !== 'open') continue; // sent on open, without since for this stream
            this._reloading.add(stream);
            this._send(this._subscribeFrame(sub, sub.filter));
            reloading = true;
        }
        if (owners.length && this._connection.state !== 'open') this._reloading.add(stream);
        this._log('warn', 'WebSocketClient: ' + stream + ' messages ' + from + '-' + to + ' are lost'
            + (reloading ? '; reloading its history' : ''));
        return { channel: stream, from: from, to: to, reloading: reloading, subscriptions: owners };
    }

    /** The subscription keys ('ticker:AAPL', 'patterns', ...), in the order they were made. */
    keys() {
        return Array.from(this._subs.keys());
    }

    /** The resume position of every stream: {stream: seq}. */
    positions() {
        /** @type {Record<string, number>} */
        const streams = {};
        for (const [stream, seq] of this._lastSeq) streams[stream] = seq;
        return streams;
    }

    /**
     * The subscription a (channel, ticker, interval) names, checked; null (with a warning) when invalid.
     * @param {string} channel
     * @param {string | null | undefined} ticker
     * @param {string | null | undefined} interval
     * @returns {{channel: string, ticker: string | null, interval: string | null, key: string} | null}
     */
    _target(channel, ticker, interval) {
        if (typeof channel !== 'string' || channel === '') {
            this._log('warn', 'WebSocketClient: subscribe needs a channel name');
            return null;
        }
        const t = normalizeTicker(ticker);
        if ((channel === 'ticker' || channel === 'bars') && !t) {
            this._log('warn', "WebSocketClient: the '" + channel + "' channel needs a ticker symbol");
            return null;
        }
        const i = interval === undefined || interval === null ? null : interval;
        if (channel === 'bars' ? i === null || !BAR_INTERVALS.includes(i) : i !== null) {
            this._log('warn', channel === 'bars'
                ? "WebSocketClient: the 'bars' channel needs an interval: one of " + BAR_INTERVALS.join(', ')
                : "WebSocketClient: only the 'bars' channel takes an interval");
            return null;
        }
        return { channel: channel, ticker: t, interval: i, key: subscriptionKey(channel, t, i) };
    }

    /**
     * The filter of `options`, checked: null for none, undefined (with a warning) when it is not an object.
     * @param {SubscribeOptions | null | undefined} options
     */
    _filterOf(options) {
        const filter = normalizeFilter(options && typeof options === 'object' ? options.filter : null);
        if (filter === undefined) this._log('warn', 'WebSocketClient: a filter is an object, e.g. {"score": {"gte": 8}}');
        return filter;
    }

    /**
     * Subscribe to a channel (and ticker, and the `bars` channel's interval); remembered across
     * reconnects. `options.filter` asks for only the messages it matches (docs/protocol.md, "Filters");
     * subscribing again with another filter widens the subscription to the `or` of both, as the server
     * does (setFilter() replaces it). Returns false if invalid.
     * @param {string} channel
     * @param {string | null} [ticker]
     * @param {string | null} [interval]
     * @param {SubscribeOptions | null} [options]
     */
    subscribe(channel, ticker, interval, options) {
        const target = this._target(channel, ticker, interval);
        const filter = this._filterOf(options);
        if (!target || filter === undefined) return false;
        let sub = this._subs.get(target.key);
        if (sub) {
            const combined = eitherFilter(sub.filter, filter);
            if (sub.streams && sameFilter(combined, sub.filter)) return true; // already subscribed and acknowledged
            sub.filter = combined;
        } else {
            sub = { ...target, streams: null, filter: filter, served: null, live: false };
            this._subs.set(target.key, sub);
        }
        // The server ORs this frame's filter with what it already has (an earlier frame of this session).
        if (this._connection.state === 'open') this._send(this._subscribeFrame(sub, filter));
        return true;
    }

    /**
     * Replace the filter of a subscription (null or {}: no filter): unsubscribe, then subscribe with the
     * new filter, so the `history` reply comes again, whole and filtered (the resume position is
     * forgotten; queued messages of its streams are dropped, and live ones that followed the old filter
     * until the server's acknowledgement). Handlers stay. Without such a subscription, subscribe().
     * Returns false if invalid.
     * @param {string} channel
     * @param {Filter | null} filter
     * @param {string | null} [ticker]
     * @param {string | null} [interval]
     */
    setFilter(channel, filter, ticker, interval) {
        const target = this._target(channel, ticker, interval);
        const wanted = this._filterOf({ filter: filter });
        if (!target || wanted === undefined) return false;
        const sub = this._subs.get(target.key);
        if (!sub) return this.subscribe(channel, ticker, interval, { filter: wanted });
        if (sameFilter(sub.filter, wanted)) return true;
        sub.filter = wanted;
        const streams = this._streamsOf(sub);
        for (const s of streams) {
            this._lastSeq.delete(s);
            this._holes.delete(s);
        }
        this._queue.dropStreams(streams);
        if (this._connection.state === 'open') {
            for (const s of streams) this._muted.add(s);
            sub.live = false;
            this._send(this._unsubscribeFrame(sub));
            this._send(this._subscribeFrame(sub, wanted));
        }
        return true;
    }

    /**
     * The filter of a subscription now (the server's echo once acknowledged), null when it has none,
     * undefined when there is no such subscription.
     * @param {string} channel
     * @param {string | null} [ticker]
     * @param {string | null} [interval]
     * @returns {Filter | null | undefined}
     */
    filterOf(channel, ticker, interval) {
        const sub = this._subs.get(subscriptionKey(channel, normalizeTicker(ticker), interval || null));
        return sub ? sub.filter : undefined;
    }

    /**
     * Unsubscribe; forgets the resume position and drops queued messages of its streams.
     * @param {string} channel
     * @param {string | null} [ticker]
     * @param {string | null} [interval]
     */
    unsubscribe(channel, ticker, interval) {
        if (typeof channel !== 'string' || channel === '') return false;
        const t = normalizeTicker(ticker);
        const i = typeof interval === 'string' && interval !== '' ? interval : null;
        const key = subscriptionKey(channel, t, i);
        const sub = this._subs.get(key);
        if (sub) this._forget(sub);
        if (this._connection.state === 'open') {
            this._send(this._unsubscribeFrame({ channel: channel, ticker: t, interval: i }));
            return true;
        }
        return !!sub;
    }

    /**
     * Forget a subscription: its resume position and queued messages (of streams no other one shares).
     * @param {Subscription} sub
     */
    _forget(sub) {
        this._subs.delete(sub.key);
        const streams = this._streamsOf(sub);
        for (const other of this._subs.values()) {
            for (const s of other.streams || [other.key]) streams.delete(s);
        }
        for (const s of streams) {
            this._lastSeq.delete(s);
            this._muted.delete(s);
            this._gaps.delete(s);
            this._reloading.delete(s);
            this._holes.delete(s);
        }
        this._queue.dropStreams(streams);
    }

    /** @param {Subscription} sub */
    _streamsOf(sub) {
        const streams = new Set(sub.streams || [sub.key]);
        streams.add(sub.key);
        return streams;
    }

    /** Send every subscription again, each with its filter and `since` (a new session). */
    resubscribeAll() {
        this._requests = [];
        this._muted.clear();
        for (const sub of Array.from(this._subs.values())) {
            sub.live = false;
            this._send(this._subscribeFrame(sub, sub.filter));
        }
    }

    /** @param {Record<string, unknown>} frame */
    _send(frame) {
        this._connection.sendFrame(frame);
    }

    /**
     * A frame went out (the Connection's hook): it awaits its answer. The server answers each frame once,
     * in order — which is how an `error` is tied to the subscribe it refuses.
     * @param {any} frame
     */
    noteSent(frame) {
        const type = frame && frame.type;
        if (type !== 'subscribe' && type !== 'unsubscribe') {
            this._requests.push({ action: 'other', key: '' });
            return;
        }
        const i = typeof frame.interval === 'string' && frame.interval !== '' ? frame.interval : null;
        this._requests.push({
            action: type === 'subscribe' ? 'subscribed' : 'unsubscribed',
            key: subscriptionKey(String(frame.channel), normalizeTicker(frame.ticker), i),
        });
    }

    /** A `pong`: the oldest ping awaiting its answer has it. */
    notePong() {
        const index = this._requests.findIndex((r) => r.action === 'other');
        if (index !== -1) this._requests.splice(0, index + 1);
    }

    /**
     * Take the request a `subscription` reply answers (and the earlier ones, answered by errors this
     * client could not tie to them); true when a later subscribe of the same key still awaits its answer.
     * @param {string} action
     * @param {string} key
     */
    _answered(action, key) {
        const index = this._requests.findIndex((r) => r.action === action && r.key === key);
        if (index !== -1) this._requests.splice(0, index + 1);
        return this._requests.some((r) => r.action === 'subscribed' && r.key === key);
    }

    /**
     * The server acknowledged a subscription (a `subscription` message): remember its streams, and its
     * filter as the server has it (unless a newer subscribe of it is on its way).
     * @param {Message} msg
     */
    acknowledge(msg) {
        if (typeof msg.channel !== 'string') return;
        const interval = typeof msg.interval === 'string' ? msg.interval : null;
        const key = subscriptionKey(msg.channel, /** @type {string | null} */ (msg.ticker ?? null), interval);
        if (msg.action !== 'subscribed') {
            if (msg.action === 'unsubscribed') this._answered('unsubscribed', key);
            return;
        }
        const newer = this._answered('subscribed', key);
        const sub = this._subs.get(key);
        if (!sub) return;
        const streams = Array.isArray(msg.streams) ? msg.streams.filter((s) => typeof s === 'string' && s !== '') : [];
        sub.streams = streams.length ? streams : [sub.key];
        if (newer) return;
        sub.live = true;
        const echoed = normalizeFilter(msg.filter);
        sub.filter = sub.served = echoed === undefined ? null : echoed;
        for (const s of this._streamsOf(sub)) this._muted.delete(s);
    }

    /**
     * An `error`: the answer to the oldest frame awaiting one (the server answers frames in order), except
     * `history_unavailable`, which follows a subscription's acknowledgement. When it refuses a subscribe,
     * that subscription is no longer pending: forgotten when the server has none, else back to the filter
     * the server kept. Returns the subscription refused, for the error's handlers, or null.
     * @param {Message} msg
     * @returns {SubscriptionInfo | null}
     */
    refuse(msg) {
        if (msg.code === 'history_unavailable') return null;
        const request = this._requests.shift();
        if (!request || request.action !== 'subscribed') return null;
        if (typeof msg.code !== 'string' || !SUBSCRIBE_REFUSALS.has(msg.code)) return null; // e.g. rate_limited: sent again on reconnect
        const sub = this._subs.get(request.key);
        if (!sub) return null;
        /** @type {SubscriptionInfo} */
        const info = { channel: sub.channel, ticker: sub.ticker, interval: sub.interval, filter: sub.filter };
        if (this._requests.some((r) => r.action === 'subscribed' && r.key === request.key)) return info; // a newer one decides
        if (sub.live) {
            // A widening subscribe refused (the `or` of both over the limits): the server kept its own.
            this._log('warn', 'WebSocketClient: ' + sub.key + ' keeps its filter: ' + msg.message);
            sub.filter = sub.served;
        } else {
            this._log('warn', 'WebSocketClient: ' + sub.key + ' not subscribed: ' + msg.message);
            this._forget(sub);
        }
        return info;
    }

    /**
     * @param {Subscription} sub
     * @param {Filter | null} filter
     */
    _subscribeFrame(sub, filter) {
        /** @type {Record<string, unknown>} */
        const frame = { type: 'subscribe', channel: sub.channel };
        if (sub.ticker) frame.ticker = sub.ticker;
        if (sub.interval) frame.interval = sub.interval;
        if (filter) frame.filter = filter;
        const since = this._sinceFor(sub);
        if (since !== undefined) frame.since = since;
        return frame;
    }

    /** @param {{channel: string, ticker: string | null, interval: string | null}} sub */
    _unsubscribeFrame(sub) {
        /** @type {Record<string, unknown>} */
        const frame = { type: 'unsubscribe', channel: sub.channel };
        if (sub.ticker) frame.ticker = sub.ticker;
        if (sub.interval) frame.interval = sub.interval;
        return frame;
    }

    /**
     * `since` for a subscription: an int for one stream, {stream: seq} for several, undefined if unknown.
     * A stream whose history is being reloaded after a gap has none: the server sends its whole history.
     */
    _sinceFor(sub) {
        const streams = sub.streams;
        if (!streams || streams.length === 0) return undefined;
        const reloading = this._reloading;
        if (streams.length === 1) return reloading.has(streams[0]) ? undefined : this._lastSeq.get(streams[0]);
        const since = {};
        let any = false;
        for (const s of streams) {
            const seq = reloading.has(s) ? undefined : this._lastSeq.get(s);
            if (seq !== undefined) {
                since[s] = seq;
                any = true;
            }
        }
        return any ? since : undefined;
    }

    // ───────────── resume ─────────────

    /**
     * False when the message is a duplicate: its seq is at or below the last one delivered on its stream,
     * or the last one waiting in the queue. Records nothing: see the queue's push() and deliverData().
     * @param {Message} msg
     * @param {string | null} fallbackStream
     */
    accept(msg, fallbackStream) {
        const stream = streamOf(msg) || fallbackStream;
        if (stream && this._muted.size && this._muted.has(stream)) return false; // the filter being replaced
        const seq = seqOf(msg);
        if (!stream || seq === null) return true;
        const hole = this._holes.size ? this._holes.get(stream) : undefined;
        if (hole && seq > hole.floor && seq < hole.below) {
            hole.floor = seq; // older than the gap and not seen yet: the moved resume position must not drop it
            return true;
        }
        const delivered = this._lastSeq.get(stream);
        const queued = this._queue.queuedSeq(stream);
        if ((delivered !== undefined && seq <= delivered) || (queued !== undefined && seq <= queued)) {
            this._stats.duplicatesDropped++;
            return false;
        }
        return true;
    }

    /**
     * Deliver a data message to its handlers; its seq becomes the stream's resume position.
     * @param {Message} msg
     * @param {boolean} replayed
     * @param {string | null} fallbackStream
     */
    deliverData(msg, replayed, fallbackStream) {
        const stream = streamOf(msg) || fallbackStream;
        const seq = seqOf(msg);
        if (stream && seq !== null) {
            const last = this._lastSeq.get(stream);
            if (last === undefined || seq > last) this._lastSeq.set(stream, seq);
        }
        this._deliver(msg, replayed);
    }

    /**
     * A history reply: delivered at once. Its `seq` (the stream's newest) becomes the resume position
     * only once all of its messages were delivered — not when a handler disconnected in between.
     * @param {Message} msg
     */
    handleHistory(msg) {
        const live = this._connection.session();
        let stream = typeof msg.channel === 'string' && msg.channel !== '' ? msg.channel : null;
        if (!stream && msg.ticker) stream = 'ticker:' + normalizeTicker(msg.ticker);
        const latest = seqOf(msg);
        if (stream && this._muted.has(stream)) return; // the history of a filter already replaced
        if (stream) {
            // After this reply nothing older than a gap can come (the server drops what it covered).
            this._reloading.delete(stream);
            this._holes.delete(stream);
            // Live messages of this stream still queued are older than the replay: deliver them first.
            for (const m of this._queue.take(stream)) {
                if (!live()) return;
                this.deliverData(m, false, stream);
            }
            const known = this._lastSeq.get(stream);
            if (latest !== null && known !== undefined && latest < known) {
                // The server's stream restarted below our position (e.g. a restarted single instance).
                this._log('info', 'WebSocketClient: stream ' + stream + ' restarted at ' + latest + ' (was ' + known + ')');
                this._lastSeq.delete(stream);
            }
        }
        const items = Array.isArray(msg.messages) ? msg.messages : [];
        for (const item of items) {
            if (!live()) return;
            if (!item || typeof item !== 'object' || typeof item.type !== 'string') continue;
            if (!this.accept(item, stream)) continue;
            this.deliverData(item, true, stream);
        }
        if (!live()) return;
        if (stream && latest !== null) {
            const known = this._lastSeq.get(stream);
            if (known === undefined || latest > known) this._lastSeq.set(stream, latest);
        }
    }
}
