// @ts-check
/**
 * Legend Realtime client — subscriptions and resume: the subscriptions the client keeps across
 * reconnects, the position (`seq`) of the last message delivered on each stream, the `since` sent when
 * subscribing again, duplicate detection, and `history` replies (replay, then the resume position).
 *
 * Methods of WebSocketClient (installed by client.js). State they own, set up in its constructor:
 * _subs (key -> subscription), _lastSeq (stream -> seq delivered), _queuedSeq (stream -> seq queued).
 */

/** @typedef {import('./types.js').Client} Client */

/** An upper-cased, trimmed ticker symbol, or null when there is none. Only ASCII is upper-cased
 *  ('ıbm'.toUpperCase() is 'IBM'): anything else goes to the server as typed, which refuses it. */
export function normalizeTicker(ticker) {
    if (ticker === null || ticker === undefined) return null;
    const t = String(ticker).trim();
    if (t === '') return null;
    return /^[\x20-\x7e]*$/.test(t) ? t.toUpperCase() : t;
}

/** The subscription key the stats use: 'ticker:AAPL', 'patterns', 'news:TSLA'. */
export function subscriptionKey(channel, ticker) {
    const t = normalizeTicker(ticker);
    return t ? channel + ':' + t : String(channel);
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

/** @satisfies {ThisType<Client>} */
export const subscriptions = {
    /** Subscribe to a channel (and ticker); remembered across reconnects. Returns false if invalid. */
    subscribe(channel, ticker) {
        if (typeof channel !== 'string' || channel === '') {
            this._log('warn', 'WebSocketClient: subscribe needs a channel name');
            return false;
        }
        const t = normalizeTicker(ticker);
        if (channel === 'ticker' && !t) {
            this._log('warn', "WebSocketClient: the 'ticker' channel needs a ticker symbol");
            return false;
        }
        const key = subscriptionKey(channel, t);
        let sub = this._subs.get(key);
        if (sub && sub.streams) return true; // already subscribed and acknowledged
        if (!sub) {
            sub = { channel: channel, ticker: t, key: key, streams: null };
            this._subs.set(key, sub);
        }
        if (this._state === 'open') this._sendFrame(this._subscribeFrame(sub));
        return true;
    },

    /** Unsubscribe; forgets the resume position and drops queued messages of its streams. */
    unsubscribe(channel, ticker) {
        if (typeof channel !== 'string' || channel === '') return false;
        const t = normalizeTicker(ticker);
        const key = subscriptionKey(channel, t);
        const sub = this._subs.get(key);
        if (sub) {
            this._subs.delete(key);
            const streams = new Set(sub.streams || [key]);
            streams.add(key);
            for (const other of this._subs.values()) {
                for (const s of other.streams || [other.key]) streams.delete(s);
            }
            for (const s of streams) {
                this._lastSeq.delete(s);
                this._queuedSeq.delete(s);
            }
            this._removeQueued((msg) => streams.has(streamOf(msg)));
        }
        if (this._state === 'open') {
            const frame = { type: 'unsubscribe', channel: channel };
            if (t) frame.ticker = t;
            this._sendFrame(frame);
            return true;
        }
        return !!sub;
    },

    _subscribeFrame(sub) {
        const frame = { type: 'subscribe', channel: sub.channel };
        if (sub.ticker) frame.ticker = sub.ticker;
        const since = this._sinceFor(sub);
        if (since !== undefined) frame.since = since;
        return frame;
    },

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
    },

    // ───────────── resume ─────────────

    /**
     * False when the message is a duplicate: its seq is at or below the last one delivered on its stream,
     * or the last one waiting in the queue. Records nothing: see _enqueue() and _deliverData().
     */
    _accept(msg, fallbackStream) {
        const stream = streamOf(msg) || fallbackStream;
        const seq = seqOf(msg);
        if (!stream || seq === null) return true;
        const delivered = this._lastSeq.get(stream);
        const queued = this._queuedSeq.get(stream);
        if ((delivered !== undefined && seq <= delivered) || (queued !== undefined && seq <= queued)) {
            this._stats.duplicatesDropped++;
            return false;
        }
        return true;
    },

    /** Deliver a data message to its handlers; its seq becomes the stream's resume position. */
    _deliverData(msg, replayed, fallbackStream) {
        const stream = streamOf(msg) || fallbackStream;
        const seq = seqOf(msg);
        if (stream && seq !== null) {
            const last = this._lastSeq.get(stream);
            if (last === undefined || seq > last) this._lastSeq.set(stream, seq);
        }
        this._deliver(msg, replayed);
    },

    /**
     * A history reply: delivered at once. Its `seq` (the stream's newest) becomes the resume position
     * only once all of its messages were delivered — not when a handler disconnected in between.
     */
    _handleHistory(msg) {
        const ws = this._ws;
        const live = () => this._ws === ws && !this._manualClose;
        let stream = typeof msg.channel === 'string' && msg.channel !== '' ? msg.channel : null;
        if (!stream && msg.ticker) stream = 'ticker:' + normalizeTicker(msg.ticker);
        const latest = seqOf(msg);
        if (stream) {
            // Live messages of this stream still queued are older than the replay: deliver them first.
            const earlier = this._removeQueued((m) => streamOf(m) === stream);
            this._queuedSeq.delete(stream);
            for (const m of earlier) {
                if (!live()) return;
                this._deliverData(m, false, stream);
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
            if (!this._accept(item, stream)) continue;
            this._deliverData(item, true, stream);
        }
        if (!live()) return;
        if (stream && latest !== null) {
            const known = this._lastSeq.get(stream);
            if (known === undefined || latest > known) this._lastSeq.set(stream, latest);
        }
    },
};
