// @ts-check
/**
 * Legend Realtime client — the throttled queue of data messages: delivered at most
 * `maxMessagesPerSecond` per second; queued price updates of one ticker, and open bars of one bars
 * stream, conflated (the newest replaces the older in place; a closed bar never is, and a later open bar
 * queues behind it, in seq order); bounded by `maxQueueSize`, dropping price updates first and never a must-deliver
 * message (the queue grows beyond the bound for those, counted in `queueOverflows`).
 *
 * It also remembers, per stream, the highest seq waiting in it: the subscriptions ask for it to tell a
 * duplicate (queuedSeq()), and a message that leaves the queue undelivered no longer counts as seen.
 */
import { seqOf, streamOf } from './subscriptions.js';

/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').ClientStats} ClientStats */
/** @typedef {import('./types.js').Log} Log */
/** @typedef {{msg: Message, key: string | null}} Entry */

/**
 * What a queued message conflates with: a price update's ticker, an open bar's 'bar:' + stream; null for
 * a must-deliver message (a closed bar among them).
 * @param {Message} msg
 * @returns {string | null}
 */
function conflationKey(msg) {
    if (msg.type === 'price_update' && typeof msg.ticker === 'string') return msg.ticker.toUpperCase();
    if (msg.type === 'bar' && msg.closed !== true) {
        const stream = streamOf(msg);
        return stream ? 'bar:' + stream : null;
    }
    return null;
}

export class MessageQueue {
    /**
     * @param {object} parts
     * @param {{maxQueueSize: number, maxMessagesPerSecond: number}} parts.options
     * @param {{setTimeout: (fn: () => void, ms: number) => unknown, clearTimeout: (id: unknown) => void, now: () => number}} parts.clock
     * @param {ClientStats} parts.stats the client's counters (conflatedMessages, droppedMessages, queueOverflows)
     * @param {Log} parts.log
     * @param {(msg: Message) => void} parts.deliver called with each message when its turn comes
     */
    constructor({ options, clock, stats, log, deliver }) {
        this._options = options;
        this._clock = clock;
        this._stats = stats;
        this._log = log;
        this._deliver = deliver;
        /** @type {Entry[]} */
        this._entries = [];
        /** @type {Map<string, Entry>} ticker (or 'bar:' + stream) -> queued price update (open bar), for conflation */
        this._conflation = new Map();
        /** @type {Map<string, number>} stream -> highest seq accepted into the queue, not yet delivered nor discarded */
        this._queuedSeq = new Map();
        this._drainTimer = null;
        this._nextProcessAt = -Infinity;
        this._overflowWarned = false;
    }

    /** How many messages wait. */
    get size() {
        return this._entries.length;
    }

    /**
     * The highest seq of `stream` waiting in the queue, or undefined.
     * @param {string} stream
     */
    queuedSeq(stream) {
        return this._queuedSeq.get(stream);
    }

    /** @param {Message} msg */
    push(msg) {
        const key = conflationKey(msg);
        if (msg.type === 'bar' && msg.closed === true) {
            const stream = streamOf(msg);
            if (stream) this._conflation.delete('bar:' + stream); // later open bars queue behind this one
        }
        if (key !== null) {
            const waiting = this._conflation.get(key);
            if (waiting) {
                waiting.msg = msg; // the newer price replaces the older one in place
                this._stats.conflatedMessages++;
                this._noteQueued(msg);
                return;
            }
        }
        if (this._entries.length >= this._options.maxQueueSize && !this._dropOne()) {
            // Full of must-deliver messages: a price update may go; anything else is kept anyway.
            if (key !== null) {
                this._stats.droppedMessages++;
                this._warnOverflow('dropping price updates');
                return;
            }
            this._stats.queueOverflows++;
            this._warnOverflow('keeping must-deliver messages beyond the limit');
        }
        const entry = { msg: msg, key: key };
        this._entries.push(entry);
        if (key !== null) this._conflation.set(key, entry);
        this._noteQueued(msg);
        this._scheduleDrain();
    }

    /**
     * Discard the queued messages of `streams` (an unsubscribe): they no longer count as seen.
     * @param {Set<string>} streams
     */
    dropStreams(streams) {
        for (const s of streams) this._queuedSeq.delete(s);
        this._remove((msg) => streams.has(streamOf(msg)));
    }

    /**
     * Take the queued messages of `stream` out of the queue, in queue order (a history reply delivers
     * them first: they are older than the replay).
     * @param {string} stream
     * @returns {Message[]}
     */
    take(stream) {
        const removed = this._remove((m) => streamOf(m) === stream);
        this._queuedSeq.delete(stream);
        return removed;
    }

    /** Discard everything (disconnect): undelivered, so not seen; the resume position stays at the last delivered. */
    clear() {
        this._entries = [];
        this._conflation.clear();
        this._queuedSeq.clear();
        this._overflowWarned = false;
        if (this._drainTimer !== null) this._clock.clearTimeout(this._drainTimer);
        this._drainTimer = null;
    }

    /** Remember the highest queued seq of the message's stream (for duplicate detection). */
    _noteQueued(msg) {
        const stream = streamOf(msg);
        const seq = seqOf(msg);
        if (!stream || seq === null) return;
        const queued = this._queuedSeq.get(stream);
        if (queued === undefined || seq > queued) this._queuedSeq.set(stream, seq);
    }

    /**
     * Make room by dropping the oldest queued price update (conflatable: a newer price supersedes it).
     * Must-deliver messages are never dropped. Returns false when there is no price update to drop.
     */
    _dropOne() {
        let index = -1;
        for (let i = 0; i < this._entries.length; i++) {
            if (this._entries[i].key !== null) {
                index = i;
                break;
            }
        }
        if (index === -1) return false;
        const entry = this._entries.splice(index, 1)[0];
        this._forgetEntry(entry);
        this._recountQueued([streamOf(entry.msg)]);
        this._stats.droppedMessages++;
        this._warnOverflow('dropping price updates');
        return true;
    }

    _warnOverflow(what) {
        if (this._overflowWarned) return;
        this._overflowWarned = true;
        this._log('warn', 'WebSocketClient: message queue full (' + this._options.maxQueueSize + '); ' + what);
    }

    /**
     * Messages of `streams` left the queue undelivered: their seqs no longer count as seen, so that a
     * replay brings them again. Recomputed from what is still queued.
     */
    _recountQueued(streams) {
        const wanted = new Set();
        for (const s of streams) {
            if (s && this._queuedSeq.delete(s)) wanted.add(s);
        }
        if (wanted.size === 0) return;
        for (const entry of this._entries) {
            const stream = streamOf(entry.msg);
            if (wanted.has(stream)) this._noteQueued(entry.msg);
        }
    }

    _forgetEntry(entry) {
        if (entry && entry.key !== null && this._conflation.get(entry.key) === entry) this._conflation.delete(entry.key);
    }

    /**
     * Remove queued messages matching `predicate`; returns them in queue order.
     * @param {(msg: Message) => boolean} predicate
     */
    _remove(predicate) {
        /** @type {Message[]} */
        const removed = [];
        if (this._entries.length === 0) return removed;
        const kept = [];
        for (const entry of this._entries) {
            if (predicate(entry.msg)) {
                this._forgetEntry(entry);
                removed.push(entry.msg);
            } else {
                kept.push(entry);
            }
        }
        this._entries = kept;
        return removed;
    }

    _scheduleDrain() {
        if (this._drainTimer !== null || this._entries.length === 0) return;
        const wait = Math.max(0, this._nextProcessAt - this._clock.now());
        this._drainTimer = this._clock.setTimeout(() => {
            this._drainTimer = null;
            this._drain();
        }, wait);
    }

    /** Deliver queued messages, one every 1000 / maxMessagesPerSecond ms at most. */
    _drain() {
        const interval = 1000 / this._options.maxMessagesPerSecond;
        while (this._entries.length > 0) {
            const now = this._clock.now();
            if (now < this._nextProcessAt) break;
            const entry = this._entries.shift();
            this._forgetEntry(entry);
            this._nextProcessAt = now + interval;
            this._deliver(entry.msg);
        }
        if (this._entries.length === 0) this._overflowWarned = false;
        this._scheduleDrain();
    }
}
