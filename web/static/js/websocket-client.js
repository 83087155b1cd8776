/**
 * Legend Realtime — WebSocket client core.
 *
 * Plain JavaScript, no build step, no dependencies. Load it with a <script> tag (it defines
 * `window.WebSocketClient`, with the helpers as static properties, e.g. `WebSocketClient.computeBackoff`)
 * or `require()` it in Node (`const { WebSocketClient, computeBackoff } = require(...)`).
 *
 * Usage:
 *
 *   const ws = new WebSocketClient({ userId: 'user123', maxMessagesPerSecond: 10, batchUpdateDelay: 100 });
 *   ws.connect();
 *   ws.subscribe('ticker', 'AAPL');            // also 'patterns', 'alerts', 'market_status', 'news', ...
 *   const off = ws.on('price_update', (msg, info) => {
 *       ws.updateElementIfChanged(document.getElementById('aapl-price'), msg.price, v => `$${v.toFixed(2)}`);
 *   });                                        // info.replayed is true for messages replayed from `history`
 *   ws.on('statechange', ({ state }) => console.log(state));   // connecting | open | reconnecting | closed
 *   ws.on('service_status', (msg) => console.log(msg.status)); // degraded | ok (ws.serviceStatus: the latest)
 *   console.log(ws.getStats());
 *   off();                                     // remove the handler
 *   ws.disconnect();                           // no reconnect after this (destroy() also drops handlers)
 *
 * Behaviour in brief:
 * - Reconnects with exponential backoff and *equal jitter* (see computeBackoff), except after disconnect()
 *   and close codes 4401/4403. After a reconnect every subscription is sent again with `since` (the last
 *   `seq` *delivered to handlers* on each of its streams), so the server replays what was missed;
 *   duplicates are dropped. A message that is queued but never delivered (queue cleared by disconnect(),
 *   a price update dropped from a full queue) does not count: it is replayed on the next resume.
 * - Control messages (connection, subscription, history, pong, error, service_status) are handled at
 *   once; `serviceStatus` is 'degraded' from a `service_status` degraded until the next ok or until the
 *   socket closes (a server only speaks up while degraded), else 'ok'. Everything
 *   else goes through a queue processed at most `maxMessagesPerSecond` per second; queued price
 *   updates of one ticker are conflated (the newest replaces the older in place). The queue holds
 *   `maxQueueSize` messages: when full, price updates are dropped (the oldest queued one first), but
 *   must-deliver messages (pattern_alert, alert_trigger, news, market_status, ...) never are — the
 *   queue grows beyond the bound for them (counted in `queueOverflows`); the server bounds its side.
 * - disconnect() delivers nothing further (queued messages are discarded) but keeps the resume position,
 *   so connect() later resumes after the last message delivered.
 * - DOM writes requested with updateElementIfChanged() are change-detected and applied together in one
 *   requestAnimationFrame callback, at most once every `batchUpdateDelay` ms. Nothing else touches the DOM.
 *   Call forgetElements(root) when removing elements from the page so the cache does not keep them.
 * - Pings every `heartbeatInterval`; a connection silent for 2 × heartbeatInterval is dropped and resumed.
 *
 * Beyond the documented options: `token` (JWT, a string or a function returning one; sent as the
 * WebSocket subprotocols ['bearer', token]), `WebSocket`, `setTimeout`, `clearTimeout`, `setInterval`,
 * `clearInterval`, `now`, `random`, `requestAnimationFrame`, `logger` (console by default, null for
 * silence), `location` (for URL auto-detection), `maxCacheSize` (5000), `noReconnectCodes` ([4401, 4403]).
 */
(function (root, factory) {
    'use strict';
    var api = factory();
    if (typeof module === 'object' && module && module.exports) {
        module.exports = api;
    } else if (root) {
        root.WebSocketClient = api.WebSocketClient;
    }
})(typeof globalThis !== 'undefined' ? globalThis : typeof self !== 'undefined' ? self : this, function () {
    'use strict';

    /** Server message types handled at once: never queued, throttled or dropped. */
    const CONTROL_TYPES = new Set(['connection', 'subscription', 'history', 'pong', 'error', 'service_status']);

    /** Close codes after which reconnecting with the same credentials cannot help. */
    const NO_RECONNECT_CODES = Object.freeze([4401, 4403]);

    /** Close code the client uses when it gives up on a silent connection. */
    const HEARTBEAT_TIMEOUT_CODE = 4000;

    const SOCKET_OPEN = 1;

    const DEFAULTS = Object.freeze({
        url: null,
        userId: null,
        token: null,
        reconnectDelay: 1000,
        maxReconnectDelay: 30000,
        reconnectBackoffMultiplier: 1.5,
        heartbeatInterval: 30000,
        maxMessagesPerSecond: 10,
        batchUpdateDelay: 100,
        maxQueueSize: 1000,
        maxCacheSize: 5000,
    });

    function positive(value, fallback) {
        const n = Number(value);
        return value !== null && value !== undefined && n > 0 ? n : fallback;
    }

    function nonNegative(value, fallback) {
        const n = Number(value);
        return value !== null && value !== undefined && n >= 0 ? n : fallback;
    }

    /**
     * Delay in ms before reconnect attempt number `attempt` (0 for the first), with *equal jitter*:
     * the ceiling min(maxReconnectDelay, reconnectDelay × multiplier^attempt) is halved, and a random
     * share of the other half is added. The delay therefore lies in [ceiling/2, ceiling]: attempt 0 waits
     * between reconnectDelay/2 and reconnectDelay, every delay lies within
     * [reconnectDelay/2, maxReconnectDelay], and a crowd of clients dropped at once spreads out
     * while none of them retries at once (which full jitter would allow).
     *
     * @param {number} attempt
     * @param {{reconnectDelay?: number, maxReconnectDelay?: number, reconnectBackoffMultiplier?: number}} [options]
     * @param {() => number} [random] a source of numbers in [0, 1); Math.random by default
     * @returns {number} whole milliseconds
     */
    function computeBackoff(attempt, options, random) {
        const o = options || {};
        const base = positive(o.reconnectDelay, DEFAULTS.reconnectDelay);
        const max = positive(o.maxReconnectDelay, DEFAULTS.maxReconnectDelay);
        const multiplier = Math.max(1, positive(o.reconnectBackoffMultiplier, DEFAULTS.reconnectBackoffMultiplier));
        const n = Math.max(0, Math.floor(Number(attempt)) || 0);
        let ceiling = base * Math.pow(multiplier, n);
        if (!(ceiling <= max)) ceiling = max; // also catches Infinity / NaN
        let r = Number(typeof random === 'function' ? random() : Math.random());
        if (!(r >= 0)) r = 0;
        if (r > 1) r = 1;
        return Math.min(max, Math.round(ceiling / 2 + (r * ceiling) / 2));
    }

    /** An upper-cased, trimmed ticker symbol, or null when there is none. Only ASCII is upper-cased
     *  ('ıbm'.toUpperCase() is 'IBM'): anything else goes to the server as typed, which refuses it. */
    function normalizeTicker(ticker) {
        if (ticker === null || ticker === undefined) return null;
        const t = String(ticker).trim();
        if (t === '') return null;
        return /^[\x20-\x7e]*$/.test(t) ? t.toUpperCase() : t;
    }

    /** The subscription key the stats use: 'ticker:AAPL', 'patterns', 'news:TSLA'. */
    function subscriptionKey(channel, ticker) {
        const t = normalizeTicker(ticker);
        return t ? channel + ':' + t : String(channel);
    }

    /** The WebSocket URL: the given one, or ws(s)://<host>/api/ws from `location`; plus ?user_id=. */
    function buildUrl(url, userId, location) {
        let base = url;
        if (!base) {
            if (location && location.host) {
                base = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/api/ws';
            } else {
                base = 'ws://localhost:8000/api/ws';
            }
        }
        if (userId !== null && userId !== undefined && userId !== '') {
            base += (base.indexOf('?') === -1 ? '?' : '&') + 'user_id=' + encodeURIComponent(String(userId));
        }
        return base;
    }

    /** The stream a data message belongs to (its `channel`), or null. */
    function streamOf(msg) {
        if (typeof msg.channel === 'string' && msg.channel !== '') return msg.channel;
        if (msg.type === 'price_update' && typeof msg.ticker === 'string') return 'ticker:' + msg.ticker.toUpperCase();
        return null;
    }

    /** The message's `seq` when it is a finite number, else null. */
    function seqOf(msg) {
        return typeof msg.seq === 'number' && isFinite(msg.seq) ? msg.seq : null;
    }

    class WebSocketClient {
        /** @param {object} [options] see the comment at the top of this file */
        constructor(options) {
            const opts = options || {};
            const g = typeof globalThis !== 'undefined' ? globalThis : {};
            this.options = {
                url: opts.url || null,
                userId: opts.userId === undefined ? null : opts.userId,
                token: opts.token === undefined ? null : opts.token,
                reconnectDelay: positive(opts.reconnectDelay, DEFAULTS.reconnectDelay),
                maxReconnectDelay: positive(opts.maxReconnectDelay, DEFAULTS.maxReconnectDelay),
                reconnectBackoffMultiplier: positive(opts.reconnectBackoffMultiplier, DEFAULTS.reconnectBackoffMultiplier),
                heartbeatInterval: nonNegative(opts.heartbeatInterval, DEFAULTS.heartbeatInterval),
                maxMessagesPerSecond: positive(opts.maxMessagesPerSecond, DEFAULTS.maxMessagesPerSecond),
                batchUpdateDelay: nonNegative(opts.batchUpdateDelay, DEFAULTS.batchUpdateDelay),
                maxQueueSize: Math.max(1, Math.floor(positive(opts.maxQueueSize, DEFAULTS.maxQueueSize))),
                maxCacheSize: Math.max(1, Math.floor(positive(opts.maxCacheSize, DEFAULTS.maxCacheSize))),
                noReconnectCodes: Array.isArray(opts.noReconnectCodes) ? opts.noReconnectCodes.slice() : NO_RECONNECT_CODES.slice(),
            };

            this._WebSocket = opts.WebSocket || g.WebSocket || null;
            this._setTimeout = opts.setTimeout || ((fn, ms) => g.setTimeout(fn, ms));
            this._clearTimeout = opts.clearTimeout || ((id) => g.clearTimeout(id));
            this._setInterval = opts.setInterval || ((fn, ms) => g.setInterval(fn, ms));
            this._clearInterval = opts.clearInterval || ((id) => g.clearInterval(id));
            this._now = opts.now || (() => Date.now());
            this._random = opts.random || Math.random;
            if (typeof opts.requestAnimationFrame === 'function') {
                this._raf = opts.requestAnimationFrame;
            } else if (typeof g.requestAnimationFrame === 'function') {
                this._raf = (cb) => g.requestAnimationFrame(cb);
            } else {
                this._raf = (cb) => this._setTimeout(() => cb(this._now()), 0);
            }
            this._logger = opts.logger === undefined ? (typeof console !== 'undefined' ? console : null) : opts.logger;

            const location = opts.location !== undefined ? opts.location : g.location;
            this.url = buildUrl(this.options.url, this.options.userId, location);

            // connection
            this._ws = null;
            this._state = 'closed';
            this._manualClose = false;
            this._reconnectTimer = null;
            this._reconnectAttempts = 0;
            this._connectionId = null;
            this._serverUserId = null;
            this._serviceStatus = 'ok';

            // heartbeat and health
            this._heartbeatTimer = null;
            this._heartbeatMs = this.options.heartbeatInterval;
            this._lastMessageAt = null;
            this._pingSentAt = null;
            this._latencyMs = null;

            // subscriptions and resume: key -> {channel, ticker, key, streams}
            this._subs = new Map();
            // stream -> seq of the newest message DELIVERED to handlers: the resume position (`since`)
            this._lastSeq = new Map();
            // stream -> highest seq accepted into the queue and not yet delivered nor discarded (dedupe only)
            this._queuedSeq = new Map();

            // throttled queue of data messages: entries {msg, key}; key -> entry for price conflation
            this._queue = [];
            this._conflation = new Map();
            this._drainTimer = null;
            this._nextProcessAt = -Infinity;
            this._overflowWarned = false;

            // events
            this._handlers = new Map();

            // DOM batching: element -> formatted text last written or pending
            this._cache = new Map();
            this._pending = new Map();
            this._flushScheduled = false;
            this._flushTimer = null;
            this._lastFlushAt = -Infinity;
            this._destroyed = false;

            this._stats = {
                messagesReceived: 0,
                messagesSent: 0,
                updatesApplied: 0,
                reconnects: 0,
                errors: 0,
                droppedMessages: 0,
                duplicatesDropped: 0,
                conflatedMessages: 0,
                queueOverflows: 0,
            };
        }

        /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
        get state() {
            return this._state;
        }

        /** True while the socket is open. */
        get connected() {
            return this._state === 'open';
        }

        /** 'degraded' while the server says live delivery is degraded (a `service_status` message), else 'ok'. */
        get serviceStatus() {
            return this._serviceStatus;
        }

        // ───────────────────────────── connection ─────────────────────────────

        /** Open the connection (no-op when already connecting or open; reconnects at once when waiting). */
        connect() {
            if (!this._WebSocket) throw new Error('WebSocketClient: no WebSocket implementation available');
            this._manualClose = false;
            if (this._ws) return this;
            if (this._reconnectTimer !== null) {
                this._clearTimeout(this._reconnectTimer);
                this._reconnectTimer = null;
            } else {
                this._setState('connecting');
            }
            this._openSocket();
            return this;
        }

        /** Close the connection for good: no reconnect until connect() is called again. */
        disconnect(code, reason) {
            const closeCode = code === undefined ? 1000 : code;
            const closeReason = reason === undefined ? 'Client disconnect' : reason;
            this._manualClose = true;
            if (this._reconnectTimer !== null) {
                this._clearTimeout(this._reconnectTimer);
                this._reconnectTimer = null;
            }
            this._stopHeartbeat();
            this._clearQueue();
            this._reconnectAttempts = 0;
            const ws = this._ws;
            if (ws) {
                this._ws = null;
                this._detach(ws);
                this._closeSocket(ws, closeCode, closeReason);
                this._emit('close', { code: closeCode, reason: closeReason, wasClean: true });
            }
            this._setState('closed');
            return this;
        }

        /** disconnect(), then forget handlers, caches and pending DOM writes. */
        destroy() {
            this.disconnect();
            this._destroyed = true;
            if (this._flushTimer !== null) this._clearTimeout(this._flushTimer);
            this._flushTimer = null;
            this._handlers.clear();
            this._pending.clear();
            this._cache.clear();
        }

        _openSocket() {
            const WS = this._WebSocket;
            let token = this.options.token;
            if (typeof token === 'function') {
                try {
                    token = token();
                } catch (err) {
                    this._stats.errors++;
                    this._log('error', 'WebSocketClient: token function failed', err);
                    token = null;
                }
            }
            let ws;
            try {
                ws = token ? new WS(this.url, ['bearer', String(token)]) : new WS(this.url);
            } catch (err) {
                this._stats.errors++;
                this._log('error', 'WebSocketClient: cannot create WebSocket', err);
                this._handleClose(null, 1006, String((err && err.message) || err), false);
                return;
            }
            this._ws = ws;
            ws.binaryType = 'arraybuffer'; // the default 'blob' cannot be decoded synchronously
            ws.onopen = () => {
                if (this._ws === ws) this._handleOpen();
            };
            ws.onmessage = (event) => {
                if (this._ws === ws) this._handleFrame(event);
            };
            ws.onerror = (event) => {
                if (this._ws !== ws) return;
                this._stats.errors++;
                this._log('warn', 'WebSocketClient: socket error', event);
            };
            ws.onclose = (event) => {
                if (this._ws !== ws) return;
                const e = event || {};
                this._handleClose(ws, typeof e.code === 'number' ? e.code : 1006, e.reason || '', !!e.wasClean);
            };
        }

        _detach(ws) {
            ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        }

        _handleOpen() {
            const reconnected = this._state === 'reconnecting';
            if (reconnected) this._stats.reconnects++;
            this._reconnectAttempts = 0;
            this._lastMessageAt = this._now();
            this._pingSentAt = null;
            this._heartbeatMs = this.options.heartbeatInterval;
            this._setState('open');
            this._startHeartbeat();
            for (const sub of Array.from(this._subs.values())) {
                this._sendFrame(this._subscribeFrame(sub));
            }
            this._emit('open', { url: this.url, reconnected: reconnected });
        }

        _handleClose(ws, code, reason, wasClean) {
            if (ws) {
                this._detach(ws);
                if (this._ws === ws) this._ws = null;
            }
            this._stopHeartbeat();
            this._pingSentAt = null;
            this._serviceStatus = 'ok'; // it described that session's server; the next one says its own
            this._emit('close', { code: code, reason: reason, wasClean: wasClean });
            if (this._ws || this._reconnectTimer !== null) return; // a handler already called connect()
            if (this._manualClose) {
                this._setState('closed');
                return;
            }
            if (this.options.noReconnectCodes.indexOf(code) !== -1) {
                this._log('warn', 'WebSocketClient: closed with ' + code + ' (' + reason + '); not reconnecting');
                this._reconnectAttempts = 0;
                this._setState('closed');
                return;
            }
            this._scheduleReconnect();
        }

        _scheduleReconnect() {
            const delay = computeBackoff(this._reconnectAttempts, this.options, this._random);
            this._reconnectAttempts++;
            const attempt = this._reconnectAttempts;
            this._setState('reconnecting');
            this._reconnectTimer = this._setTimeout(() => {
                this._reconnectTimer = null;
                if (!this._manualClose && !this._ws) this._openSocket();
            }, delay);
            this._emit('reconnecting', { attempt: attempt, delay: delay });
        }

        /** Give up on the current socket now, without waiting for a close handshake, and reconnect. */
        _dropSocket(code, reason) {
            const ws = this._ws;
            if (!ws) return;
            this._detach(ws);
            this._closeSocket(ws, code, reason);
            this._handleClose(ws, code, reason, false);
        }

        /**
         * Close a socket we no longer listen to. A browser refuses (throws on) codes other than 1000 and
         * 3000-4999 and reasons over 123 bytes; the socket must still be closed, or it stays open unseen.
         */
        _closeSocket(ws, code, reason) {
            try {
                ws.close(code, reason);
                return;
            } catch (err) {
                this._log('debug', 'WebSocketClient: close(' + code + ') refused; closing without a code', err);
            }
            try {
                ws.close();
            } catch (err) {
                this._log('debug', 'WebSocketClient: close failed', err);
            }
        }

        _setState(state) {
            if (state === this._state) return;
            const previous = this._state;
            this._state = state;
            this._emit('statechange', { state: state, previous: previous });
        }

        // ───────────────────────────── heartbeat ─────────────────────────────

        _startHeartbeat() {
            this._stopHeartbeat();
            if (!(this._heartbeatMs > 0)) return;
            this._heartbeatTimer = this._setInterval(() => this._onHeartbeat(), this._heartbeatMs);
        }

        _stopHeartbeat() {
            if (this._heartbeatTimer !== null) this._clearInterval(this._heartbeatTimer);
            this._heartbeatTimer = null;
        }

        _onHeartbeat() {
            if (!this._ws || this._state !== 'open') return;
            const silentFor = this._now() - this._lastMessageAt;
            if (silentFor >= 2 * this._heartbeatMs) {
                this._log('warn', 'WebSocketClient: no message for ' + silentFor + ' ms; reconnecting');
                this._dropSocket(HEARTBEAT_TIMEOUT_CODE, 'heartbeat timeout');
                return;
            }
            if (this._sendFrame({ type: 'ping' })) this._pingSentAt = this._now();
        }

        /** The server may announce how long it waits for a client frame; ping at least twice as often. */
        _applyServerHeartbeat(seconds) {
            const timeout = Number(seconds);
            if (!(timeout > 0) || !(this.options.heartbeatInterval > 0)) return; // 0 disables the heartbeat
            const wanted = Math.min(this.options.heartbeatInterval, Math.max(1000, (timeout * 1000) / 2));
            if (wanted !== this._heartbeatMs) {
                this._heartbeatMs = wanted;
                if (this._state === 'open') this._startHeartbeat();
            }
        }

        // ───────────────────────────── sending ─────────────────────────────

        /**
         * Send a message. subscribe/unsubscribe messages go through subscribe()/unsubscribe(), so they
         * are remembered and sent on open when disconnected. Anything else is sent only when open:
         * returns false when it was dropped.
         */
        send(obj) {
            if (!obj || typeof obj !== 'object') return false;
            if (obj.type === 'subscribe') return this.subscribe(obj.channel, obj.ticker);
            if (obj.type === 'unsubscribe') return this.unsubscribe(obj.channel, obj.ticker);
            return this._sendFrame(obj);
        }

        _sendFrame(obj) {
            const ws = this._ws;
            if (!ws || this._state !== 'open' || ws.readyState !== SOCKET_OPEN) return false;
            try {
                ws.send(JSON.stringify(obj));
            } catch (err) {
                this._stats.errors++;
                this._log('error', 'WebSocketClient: send failed', err);
                return false;
            }
            this._stats.messagesSent++;
            return true;
        }

        // ───────────────────────────── subscriptions ─────────────────────────────

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
        }

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
        }

        _subscribeFrame(sub) {
            const frame = { type: 'subscribe', channel: sub.channel };
            if (sub.ticker) frame.ticker = sub.ticker;
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

        // ───────────────────────────── receiving ─────────────────────────────

        _handleFrame(event) {
            const now = this._now();
            this._stats.messagesReceived++;
            this._lastMessageAt = now;
            let data = event ? event.data : undefined;
            if (typeof data !== 'string') {
                try {
                    data = new TextDecoder().decode(data);
                } catch (err) {
                    this._stats.errors++;
                    this._log('warn', 'WebSocketClient: unreadable frame', err);
                    return;
                }
            }
            let msg;
            try {
                msg = JSON.parse(data);
            } catch (err) {
                this._stats.errors++;
                this._log('warn', 'WebSocketClient: invalid JSON frame', err);
                return;
            }
            if (!msg || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.type !== 'string') {
                this._stats.errors++;
                this._log('warn', 'WebSocketClient: frame without a type', msg);
                return;
            }
            if (CONTROL_TYPES.has(msg.type)) {
                this._handleControl(msg);
            } else if (this._accept(msg, null)) {
                this._enqueue(msg);
            }
        }

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
        }

        /** Deliver a data message to its handlers; its seq becomes the stream's resume position. */
        _deliverData(msg, replayed, fallbackStream) {
            const stream = streamOf(msg) || fallbackStream;
            const seq = seqOf(msg);
            if (stream && seq !== null) {
                const last = this._lastSeq.get(stream);
                if (last === undefined || seq > last) this._lastSeq.set(stream, seq);
            }
            this._deliver(msg, replayed);
        }

        _handleControl(msg) {
            switch (msg.type) {
                case 'connection':
                    if (msg.connection_id !== undefined) this._connectionId = msg.connection_id;
                    if (msg.user_id !== undefined) this._serverUserId = msg.user_id;
                    if (msg.heartbeat_timeout !== undefined) this._applyServerHeartbeat(msg.heartbeat_timeout);
                    break;
                case 'subscription':
                    if (msg.action === 'subscribed' && typeof msg.channel === 'string') {
                        const key = subscriptionKey(msg.channel, msg.ticker);
                        const sub = this._subs.get(key);
                        if (sub) {
                            const streams = Array.isArray(msg.streams)
                                ? msg.streams.filter((s) => typeof s === 'string' && s !== '')
                                : [];
                            sub.streams = streams.length ? streams : [key];
                        }
                    }
                    break;
                case 'history':
                    this._handleHistory(msg);
                    break;
                case 'pong':
                    if (this._pingSentAt !== null) {
                        this._latencyMs = this._now() - this._pingSentAt;
                        this._pingSentAt = null;
                    }
                    break;
                case 'service_status':
                    this._serviceStatus = msg.status === 'degraded' ? 'degraded' : 'ok';
                    break;
                case 'error':
                    this._stats.errors++;
                    this._log('warn', 'WebSocketClient: server error: ' + msg.message + (msg.code ? ' (' + msg.code + ')' : ''));
                    break;
                default:
                    break;
            }
            this._deliver(msg, false);
        }

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
        }

        // ───────────────────────────── throttled queue ─────────────────────────────

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
        }

        _warnOverflow(what) {
            if (this._overflowWarned) return;
            this._overflowWarned = true;
            this._log('warn', 'WebSocketClient: message queue full (' + this.options.maxQueueSize + '); ' + what);
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
            for (const entry of this._queue) {
                const stream = streamOf(entry.msg);
                if (wanted.has(stream)) this._noteQueued(entry.msg);
            }
        }

        _forgetEntry(entry) {
            if (entry && entry.key !== null && this._conflation.get(entry.key) === entry) this._conflation.delete(entry.key);
        }

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
        }

        _clearQueue() {
            this._queue = [];
            this._conflation.clear();
            this._queuedSeq.clear(); // undelivered: not seen; the resume position stays at the last delivered
            this._overflowWarned = false;
            if (this._drainTimer !== null) this._clearTimeout(this._drainTimer);
            this._drainTimer = null;
        }

        _scheduleDrain() {
            if (this._drainTimer !== null || this._queue.length === 0) return;
            const wait = Math.max(0, this._nextProcessAt - this._now());
            this._drainTimer = this._setTimeout(() => {
                this._drainTimer = null;
                this._drain();
            }, wait);
        }

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
        }

        // ───────────────────────────── events ─────────────────────────────

        /**
         * Listen to a server message type ('price_update', 'news', ...), '*' (every message), or a
         * lifecycle event ('open', 'close', 'reconnecting', 'statechange'). Handlers receive
         * (payload, info); for messages info.replayed tells a replay from `history`.
         * @returns {() => void} removes the handler
         */
        on(type, handler) {
            if (typeof handler !== 'function') throw new TypeError('WebSocketClient.on: handler must be a function');
            let list = this._handlers.get(type);
            if (!list) {
                list = [];
                this._handlers.set(type, list);
            }
            list.push(handler);
            return () => this.off(type, handler);
        }

        /** Remove a handler added with on(); without `handler`, every handler of `type`. */
        off(type, handler) {
            const list = this._handlers.get(type);
            if (!list) return;
            if (handler === undefined) {
                this._handlers.delete(type);
                return;
            }
            const index = list.indexOf(handler);
            if (index !== -1) list.splice(index, 1);
            if (list.length === 0) this._handlers.delete(type);
        }

        _deliver(msg, replayed) {
            const info = { replayed: replayed };
            this._emit(msg.type, msg, info);
            this._emit('*', msg, info);
        }

        _emit(type, payload, info) {
            const list = this._handlers.get(type);
            if (!list) return;
            for (const handler of list.slice()) {
                try {
                    handler(payload, info);
                } catch (err) {
                    this._stats.errors++;
                    this._log('error', "WebSocketClient: '" + type + "' handler failed", err);
                }
            }
        }

        // ───────────────────────────── DOM batching ─────────────────────────────

        /**
         * Queue `element.textContent = formatter(value)` unless that text is already shown (or queued).
         * Writes are applied together in one animation frame, at most once every batchUpdateDelay ms.
         * @returns {boolean} true if a write was queued
         */
        updateElementIfChanged(element, value, formatter) {
            if (!element || this._destroyed) return false;
            let text;
            try {
                text = typeof formatter === 'function' ? formatter(value) : value;
            } catch (err) {
                this._stats.errors++;
                this._log('error', 'WebSocketClient: formatter failed', err);
                return false;
            }
            text = text === null || text === undefined ? '' : String(text);
            if (this._cache.get(element) === text) return false;
            this._cache.delete(element); // re-insert: the Map's order is the eviction order
            this._cache.set(element, text);
            while (this._cache.size > this.options.maxCacheSize) {
                this._cache.delete(this._cache.keys().next().value);
            }
            this._pending.set(element, text);
            this._scheduleFlush();
            return true;
        }

        _scheduleFlush() {
            if (this._flushScheduled) return;
            this._flushScheduled = true;
            const wait = Math.max(0, this._lastFlushAt + this.options.batchUpdateDelay - this._now());
            const request = () => {
                this._flushTimer = null;
                this._raf(() => this._flush());
            };
            if (wait > 0) this._flushTimer = this._setTimeout(request, wait);
            else request();
        }

        _flush() {
            this._flushScheduled = false;
            if (this._destroyed) return;
            this._lastFlushAt = this._now();
            const writes = this._pending;
            this._pending = new Map();
            for (const [element, text] of writes) {
                try {
                    if (element.textContent !== text) {
                        element.textContent = text;
                        this._stats.updatesApplied++;
                    }
                    if (element.isConnected === false) this._cache.delete(element); // removed from the page
                } catch (err) {
                    this._stats.errors++;
                    this._log('error', 'WebSocketClient: DOM update failed', err);
                }
            }
        }

        /** Forget every cached value (the next update of each element is written again). */
        clearCache() {
            this._cache.clear();
        }

        /**
         * Forget `element` (cached value and pending write): call it when the element leaves the page, so
         * the cache does not keep it alive. Returns true when something was forgotten.
         */
        forgetElement(element) {
            if (!element) return false;
            const cached = this._cache.delete(element);
            const pending = this._pending.delete(element);
            return cached || pending;
        }

        /**
         * Forget `root` and every cached element inside it (root.contains()), e.g. a removed table row and
         * its cells. Returns how many elements were forgotten.
         */
        forgetElements(root) {
            if (!root) return 0;
            const inside = typeof root.contains === 'function'
                ? (node) => {
                    try {
                        return node === root || root.contains(node);
                    } catch (_) {
                        return false;
                    }
                }
                : (node) => node === root;
            let count = 0;
            for (const map of [this._cache, this._pending]) {
                for (const node of Array.from(map.keys())) {
                    if (inside(node) && map.delete(node) && map === this._cache) count++;
                }
            }
            return count;
        }

        // ───────────────────────────── stats ─────────────────────────────

        getStats() {
            const streams = {};
            for (const [stream, seq] of this._lastSeq) streams[stream] = seq;
            return {
                connected: this._state === 'open',
                reconnecting: this._state === 'reconnecting',
                reconnectAttempts: this._reconnectAttempts,
                messagesReceived: this._stats.messagesReceived,
                messagesSent: this._stats.messagesSent,
                updatesApplied: this._stats.updatesApplied,
                reconnects: this._stats.reconnects,
                errors: this._stats.errors,
                lastMessageTime: this._lastMessageAt === null ? null : new Date(this._lastMessageAt).toISOString(),
                subscriptions: Array.from(this._subs.keys()),
                queueSize: this._queue.length,
                pendingUpdates: this._pending.size,
                cacheSize: this._cache.size,
                // beyond the spec
                droppedMessages: this._stats.droppedMessages,
                duplicatesDropped: this._stats.duplicatesDropped,
                conflatedMessages: this._stats.conflatedMessages,
                queueOverflows: this._stats.queueOverflows,
                latencyMs: this._latencyMs,
                state: this._state,
                serviceStatus: this._serviceStatus,
                connectionId: this._connectionId,
                url: this.url,
                streams: streams,
            };
        }

        _log(level, ...args) {
            const logger = this._logger;
            if (!logger) return;
            const fn = typeof logger[level] === 'function' ? logger[level] : logger.log;
            if (typeof fn !== 'function') return;
            try {
                fn.apply(logger, args);
            } catch (_) {
                /* a broken logger must not break the client */
            }
        }
    }

    WebSocketClient.computeBackoff = computeBackoff;
    WebSocketClient.normalizeTicker = normalizeTicker;
    WebSocketClient.subscriptionKey = subscriptionKey;
    WebSocketClient.buildUrl = buildUrl;
    WebSocketClient.CONTROL_TYPES = CONTROL_TYPES;
    WebSocketClient.NO_RECONNECT_CODES = NO_RECONNECT_CODES;
    WebSocketClient.HEARTBEAT_TIMEOUT_CODE = HEARTBEAT_TIMEOUT_CODE;
    WebSocketClient.DEFAULTS = DEFAULTS;

    return {
        WebSocketClient: WebSocketClient,
        computeBackoff: computeBackoff,
        normalizeTicker: normalizeTicker,
        subscriptionKey: subscriptionKey,
        buildUrl: buildUrl,
        CONTROL_TYPES: CONTROL_TYPES,
        NO_RECONNECT_CODES: NO_RECONNECT_CODES,
        HEARTBEAT_TIMEOUT_CODE: HEARTBEAT_TIMEOUT_CODE,
        DEFAULTS: DEFAULTS,
    };
});
