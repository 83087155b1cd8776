// @ts-check
/**
 * Legend Realtime client — the throttled queue of data messages: delivered at most
 * `maxMessagesPerSecond` per second; queued price updates of one ticker conflated (the newest replaces
 * the older in place); bounded by `maxQueueSize`, dropping price updates first and never a must-deliver
 * message (the queue grows beyond the bound for those, counted in `queueOverflows`).
 *
 * Methods of WebSocketClient (installed by client.js). State they own, set up in its constructor:
 * _queue (entries {msg, key}), _conflation (ticker -> entry), _drainTimer, _nextProcessAt, _overflowWarned.
 */
import { seqOf, streamOf } from './subscriptions.js';

/** @typedef {import('./types.js').Client} Client */

/** @satisfies {ThisType<Client>} */
export const queue = {
    _enqueue(msg) {
        let key = null;
        if (msg.type === 'price_update' && typeof msg.ticker === 'string') {
            key = msg.ticker.toUpperCase();
            const waiting = this._conflation.get(key);
            if (waiting) {
                waiting.msg = msg; // the newer price replaces the older one in place
                this._stats.conflatedMessages++;
                this._noteQueued(msg);
                return;
            }
        }
        if (this._queue.length >= this.options.maxQueueSize && !this._dropOne()) {
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
        this._queue.push(entry);
        if (key !== null) this._conflation.set(key, entry);
        this._noteQueued(msg);
        this._scheduleDrain();
    },

    /** Remember the highest queued seq of the message's stream (for duplicate detection). */
    _noteQueued(msg) {
        const stream = streamOf(msg);
        const seq = seqOf(msg);
        if (!stream || seq === null) return;
        const queued = this._queuedSeq.get(stream);
        if (queued === undefined || seq > queued) this._queuedSeq.set(stream, seq);
    },

    /**
     * Make room by dropping the oldest queued price update (conflatable: a newer price supersedes it).
     * Must-deliver messages are never dropped. Returns false when there is no price update to drop.
     */
    _dropOne() {
        let index = -1;
        for (let i = 0; i < this._queue.length; i++) {
            if (this._queue[i].key !== null) {
                index = i;
                break;
            }
        }
        if (index === -1) return false;
        const entry = this._queue.splice(index, 1)[0];
        this._forgetEntry(entry);
        this._recountQueued([streamOf(entry.msg)]);
        this._stats.droppedMessages++;
        this._warnOverflow('dropping price updates');
        return true;
    },

    _warnOverflow(what) {
        if (this._overflowWarned) return;
        this._overflowWarned = true;
        this._log('warn', 'WebSocketClient: message queue full (' + this.options.maxQueueSize + '); ' + what);
    },

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
        for (const entry of this._queue) {
            const stream = streamOf(entry.msg);
            if (wanted.has(stream)) this._noteQueued(entry.msg);
        }
    },

    _forgetEntry(entry) {
        if (entry && entry.key !== null && this._conflation.get(entry.key) === entry) this._conflation.delete(entry.key);
    },

    /** Remove queued messages matching `predicate`; returns them in queue order. */
    _removeQueued(predicate) {
        const removed = [];
        if (this._queue.length === 0) return removed;
        const kept = [];
        for (const entry of this._queue) {
            if (predicate(entry.msg)) {
                this._forgetEntry(entry);
                removed.push(entry.msg);
            } else {
                kept.push(entry);
            }
        }
        this._queue = kept;
        return removed;
    },

    _clearQueue() {
        this._queue = [];
        this._conflation.clear();
        this._queuedSeq.clear(); // undelivered: not seen; the resume position stays at the last delivered
        this._overflowWarned = false;
        if (this._drainTimer !== null) this._clearTimeout(this._drainTimer);
        this._drainTimer = null;
    },

    _scheduleDrain() {
        if (this._drainTimer !== null || this._queue.length === 0) return;
        const wait = Math.max(0, this._nextProcessAt - this._now());
        this._drainTimer = this._setTimeout(() => {
            this._drainTimer = null;
            this._drain();
        }, wait);
    },

    /** Deliver queued messages, one every 1000 / maxMessagesPerSecond ms at most. */
    _drain() {
        const interval = 1000 / this.options.maxMessagesPerSecond;
        while (this._queue.length > 0) {
            const now = this._now();
            if (now < this._nextProcessAt) break;
            const entry = this._queue.shift();
            this._forgetEntry(entry);
            this._nextProcessAt = now + interval;
            this._deliverData(entry.msg, false, null);
        }
        if (this._queue.length === 0) this._overflowWarned = false;
        this._scheduleDrain();
    },
};
