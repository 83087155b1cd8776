// @ts-check
/**
 * Legend Realtime client — subscriptions and resume: the subscriptions the client keeps across
 * reconnects, the position (`seq`) of the last message delivered on each stream, the `since` sent when
 * subscribing again, duplicate detection, and `history` replies (replay, then the resume position).
 *
 * Subscriptions sends through the Connection and asks the MessageQueue what waits in it; the client
 * hands it each data message (accept(), then the queue) and each history reply.
 */

/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').ClientStats} ClientStats */
/** @typedef {import('./types.js').Log} Log */
/** @typedef {import('./connection.js').Connection} Connection */
/** @typedef {import('./queue.js').MessageQueue} MessageQueue */
/** @typedef {{channel: string, ticker: string | null, interval: string | null, key: string, streams: string[] | null}} Subscription */

import { BAR_INTERVALS } from './codes.js';

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
     * Subscribe to a channel (and ticker, and the `bars` channel's interval); remembered across
     * reconnects. Returns false if invalid.
     * @param {string} channel
     * @param {string | null} [ticker]
     * @param {string | null} [interval]
     */
    subscribe(channel, ticker, interval) {
        if (typeof channel !== 'string' || channel === '') {
            this._log('warn', 'WebSocketClient: subscribe needs a channel name');
            return false;
        }
        const t = normalizeTicker(ticker);
        if ((channel === 'ticker' || channel === 'bars') && !t) {
            this._log('warn', "WebSocketClient: the '" + channel + "' channel needs a ticker symbol");
            return false;
        }
        const i = interval === undefined || interval === null ? null : interval;
        if (channel === 'bars' ? i === null || !BAR_INTERVALS.includes(i) : i !== null) {
            this._log('warn', channel === 'bars'
                ? "WebSocketClient: the 'bars' channel needs an interval: one of " + BAR_INTERVALS.join(', ')
                : "WebSocketClient: only the 'bars' channel takes an interval");
            return false;
        }
        const key = subscriptionKey(channel, t, i);
        let sub = this._subs.get(key);
        if (sub && sub.streams) return true; // already subscribed and acknowledged
        if (!sub) {
            sub = { channel: channel, ticker: t, interval: i, key: key, streams: null };
            this._subs.set(key, sub);
        }
        if (this._connection.state === 'open') this._connection.sendFrame(this._subscribeFrame(sub));
        return true;
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
        if (sub) {
            this._subs.delete(key);
            const streams = new Set(sub.streams || [key]);
            streams.add(key);
            for (const other of this._subs.values()) {
                for (const s of other.streams || [other.key]) streams.delete(s);
            }
            for (const s of streams) this._lastSeq.delete(s);
            this._queue.dropStreams(streams);
        }
        if (this._connection.state === 'open') {
            /** @type {Record<string, unknown>} */
            const frame = { type: 'unsubscribe', channel: channel };
            if (t) frame.ticker = t;
            if (i) frame.interval = i;
            this._connection.sendFrame(frame);
            return true;
        }
        return !!sub;
    }

    /** Send every subscription again, each with its `since` (a new session). */
    resubscribeAll() {
        for (const sub of Array.from(this._subs.values())) {
            this._connection.sendFrame(this._subscribeFrame(sub));
        }
    }

    /**
     * The server acknowledged a subscription (a `subscription` message): remember its streams.
     * @param {Message} msg
     */
    acknowledge(msg) {
        if (msg.action !== 'subscribed' || typeof msg.channel !== 'string') return;
        const interval = typeof msg.interval === 'string' ? msg.interval : null;
        const sub = this._subs.get(subscriptionKey(msg.channel, /** @type {string | null} */ (msg.ticker ?? null), interval));
        if (!sub) return;
        const streams = Array.isArray(msg.streams) ? msg.streams.filter((s) => typeof s === 'string' && s !== '') : [];
        sub.streams = streams.length ? streams : [sub.key];
    }

    _subscribeFrame(sub) {
        /** @type {Record<string, unknown>} */
        const frame = { type: 'subscribe', channel: sub.channel };
        if (sub.ticker) frame.ticker = sub.ticker;
        if (sub.interval) frame.interval = sub.interval;
        const since = this._sinceFor(sub);
        if (since !== undefined) frame.since = since;
        return frame;
    }

    /** `since` for a subscription: an int for one stream, {stream: seq} for several, undefined if unknown. */
    _sinceFor(sub) {
        const streams = sub.streams;
        if (!streams || streams.length === 0) return undefined;
        if (streams.length === 1) return this._lastSeq.get(streams[0]);
        const since = {};
        let any = false;
        for (const s of streams) {
            const seq = this._lastSeq.get(s);
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
        const seq = seqOf(msg);
        if (!stream || seq === null) return true;
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
        if (stream) {
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
