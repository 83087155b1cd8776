// @ts-check
/**
 * Legend Realtime client — connection and reconnect: opening the socket (with the token as the
 * ['bearer', token] subprotocols), reconnecting with exponential backoff and equal jitter (after the
 * close's `reconnect_after_ms` hint, when a draining server gave one), the
 * heartbeat (ping, silence detection, the server's announced timeout) and sending frames.
 *
 * Connection owns the socket and its timers; the client learns what happens through the hooks it
 * gives (onOpen, onFrame, onClose, onDisconnect) and the lifecycle events it emits.
 */
import { DEFAULTS, HEARTBEAT_TIMEOUT_CODE, SOCKET_OPEN, positive } from './codes.js';

/** @typedef {import('./types.js').ClientStats} ClientStats */
/** @typedef {import('./types.js').Log} Log */
/** @typedef {import('./types.js').Clock} Clock */

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
export function computeBackoff(attempt, options, random) {
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

/**
 * The reconnect hint of a close reason: a draining server closes with 1001 and the reason
 * `server shutting down; reconnect_after_ms=<n>` (docs/protocol.md, "Close codes"). Returns n in whole
 * milliseconds, at most maxReconnectDelay; 0 when the reason carries no hint.
 *
 * @param {unknown} reason
 * @param {{maxReconnectDelay?: number}} [options]
 * @returns {number}
 */
export function reconnectHint(reason, options) {
    const found = /reconnect_after_ms=(\d{1,9})/.exec(String(reason === undefined || reason === null ? '' : reason));
    if (!found) return 0;
    const max = positive((options || {}).maxReconnectDelay, DEFAULTS.maxReconnectDelay);
    return Math.min(max, Number(found[1]));
}

/** The WebSocket URL: the given one, or ws(s)://<host>/api/ws from `location`; plus ?user_id=. */
export function buildUrl(url, userId, location) {
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

export class Connection {
    /**
     * @param {object} parts
     * @param {string} parts.url
     * @param {{token: unknown, heartbeatInterval: number, noReconnectCodes: number[], reconnectDelay: number,
     *          maxReconnectDelay: number, reconnectBackoffMultiplier: number}} parts.options the client's options
     * @param {any} parts.WebSocket the WebSocket constructor (null: connect() throws)
     * @param {Clock} parts.clock timers, time and randomness
     * @param {ClientStats} parts.stats the client's counters (errors, reconnects, messagesSent)
     * @param {Log} parts.log
     * @param {(type: string, payload: unknown) => void} parts.emit a lifecycle event for the client's handlers
     * @param {{onOpen: (reconnected: boolean) => void, onFrame: (event: any) => void, onClose: () => void,
     *          onDisconnect: () => void, onSent?: (obj: any) => void}} parts.hooks
     *   onOpen: the socket opened (before the 'open' event); onFrame: a frame of the live socket;
     *   onClose: a session ended (before the 'close' event); onDisconnect: disconnect() was called;
     *   onSent: a frame went out on the live socket
     */
    constructor({ url, options, WebSocket, clock, stats, log, emit, hooks }) {
        this.url = url;
        this._options = options;
        this._WebSocket = WebSocket;
        this._clock = clock;
        this._stats = stats;
        this._log = log;
        this._emit = emit;
        this._hooks = hooks;
        this._ws = null;
        /** @type {'connecting' | 'open' | 'reconnecting' | 'closed'} */
        this.state = 'closed';
        this._manualClose = false;
        this._reconnectTimer = null;
        /** Failed attempts since the last open. */
        this.reconnectAttempts = 0;
        this._heartbeatTimer = null;
        this._heartbeatMs = options.heartbeatInterval;
        /** @type {number | null} when the last frame arrived (clock.now()) */
        this.lastMessageAt = null;
        this._pingSentAt = null;
        /** @type {number | null} the round trip of the last ping, in ms */
        this.latencyMs = null;
    }

    /** Whether a WebSocket implementation is available. */
    get available() {
        return !!this._WebSocket;
    }

    /**
     * A check that stays true while the current session lasts (same socket, no disconnect()): a
     * handler may disconnect or reconnect while a reply is being delivered.
     * @returns {() => boolean}
     */
    session() {
        const ws = this._ws;
        return () => this._ws === ws && !this._manualClose;
    }

    /** Open the connection (no-op when already connecting or open; reconnects at once when waiting). */
    connect() {
        if (!this._WebSocket) throw new Error('WebSocketClient: no WebSocket implementation available');
        this._manualClose = false;
        if (this._ws) return;
        if (this._reconnectTimer !== null) {
            this._clock.clearTimeout(this._reconnectTimer);
            this._reconnectTimer = null;
        } else {
            this._setState('connecting');
        }
        this._openSocket();
    }

    /** Close the connection for good: no reconnect until connect() is called again. */
    disconnect(code, reason) {
        const closeCode = code === undefined ? 1000 : code;
        const closeReason = reason === undefined ? 'Client disconnect' : reason;
        this._manualClose = true;
        if (this._reconnectTimer !== null) {
            this._clock.clearTimeout(this._reconnectTimer);
            this._reconnectTimer = null;
        }
        this._stopHeartbeat();
        this._hooks.onDisconnect();
        this.reconnectAttempts = 0;
        const ws = this._ws;
        if (ws) {
            this._ws = null;
            this._detach(ws);
            this._closeSocket(ws, closeCode, closeReason);
            this._emit('close', { code: closeCode, reason: closeReason, wasClean: true });
        }
        this._setState('closed');
    }

    /** A `pong` arrived: the latency of the last ping is known. */
    notePong() {
        if (this._pingSentAt !== null) {
            this.latencyMs = this._clock.now() - this._pingSentAt;
            this._pingSentAt = null;
        }
    }

    _openSocket() {
        const WS = this._WebSocket;
        let token = this._options.token;
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
            if (this._ws !== ws) return;
            this.lastMessageAt = this._clock.now();
            this._hooks.onFrame(event);
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
        const reconnected = this.state === 'reconnecting';
        if (reconnected) this._stats.reconnects++;
        this.reconnectAttempts = 0;
        this.lastMessageAt = this._clock.now();
        this._pingSentAt = null;
        this._heartbeatMs = this._options.heartbeatInterval;
        this._setState('open');
        this._startHeartbeat();
        this._hooks.onOpen(reconnected);
        this._emit('open', { url: this.url, reconnected: reconnected });
    }

    _handleClose(ws, code, reason, wasClean) {
        if (ws) {
            this._detach(ws);
            if (this._ws === ws) this._ws = null;
        }
        this._stopHeartbeat();
        this._pingSentAt = null;
        this._hooks.onClose();
        this._emit('close', { code: code, reason: reason, wasClean: wasClean });
        if (this._ws || this._reconnectTimer !== null) return; // a handler already called connect()
        if (this._manualClose) {
            this._setState('closed');
            return;
        }
        if (this._options.noReconnectCodes.indexOf(code) !== -1) {
            this._log('warn', 'WebSocketClient: closed with ' + code + ' (' + reason + '); not reconnecting');
            this.reconnectAttempts = 0;
            this._setState('closed');
            return;
        }
        this._scheduleReconnect(reconnectHint(reason, this._options));
    }

    /**
     * Reconnect after the jittered backoff (computeBackoff) of the next attempt, and first `hintMs` more:
     * the close's reconnect hint, so that the clients of a draining server come back no sooner than it
     * asked and still spread out.
     * @param {number} [hintMs]
     */
    _scheduleReconnect(hintMs) {
        const delay = (hintMs || 0) + computeBackoff(this.reconnectAttempts, this._options, this._clock.random);
        this.reconnectAttempts++;
        const attempt = this.reconnectAttempts;
        this._setState('reconnecting');
        this._reconnectTimer = this._clock.setTimeout(() => {
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
        if (state === this.state) return;
        const previous = this.state;
        this.state = state;
        this._emit('statechange', { state: state, previous: previous });
    }

    // ───────────── heartbeat ─────────────

    _startHeartbeat() {
        this._stopHeartbeat();
        if (!(this._heartbeatMs > 0)) return;
        this._heartbeatTimer = this._clock.setInterval(() => this._onHeartbeat(), this._heartbeatMs);
    }

    _stopHeartbeat() {
        if (this._heartbeatTimer !== null) this._clock.clearInterval(this._heartbeatTimer);
        this._heartbeatTimer = null;
    }

    _onHeartbeat() {
        if (!this._ws || this.state !== 'open') return;
        const silentFor = this._clock.now() - this.lastMessageAt;
        if (silentFor >= 2 * this._heartbeatMs) {
            this._log('warn', 'WebSocketClient: no message for ' + silentFor + ' ms; reconnecting');
            this._dropSocket(HEARTBEAT_TIMEOUT_CODE, 'heartbeat timeout');
            return;
        }
        if (this.sendFrame({ type: 'ping' })) this._pingSentAt = this._clock.now();
    }

    /**
     * The server may announce how long it waits for a client frame; ping at least twice as often.
     * @param {unknown} seconds
     */
    applyServerHeartbeat(seconds) {
        const timeout = Number(seconds);
        if (!(timeout > 0) || !(this._options.heartbeatInterval > 0)) return; // 0 disables the heartbeat
        const wanted = Math.min(this._options.heartbeatInterval, Math.max(1000, (timeout * 1000) / 2));
        if (wanted !== this._heartbeatMs) {
            this._heartbeatMs = wanted;
            if (this.state === 'open') this._startHeartbeat();
        }
    }

    // ───────────── sending ─────────────

    /**
     * Send a frame when the socket is open; false when it was dropped.
     * @param {object} obj
     */
    sendFrame(obj) {
        const ws = this._ws;
        if (!ws || this.state !== 'open' || ws.readyState !== SOCKET_OPEN) return false;
        try {
            ws.send(JSON.stringify(obj));
        } catch (err) {
            this._stats.errors++;
            this._log('error', 'WebSocketClient: send failed', err);
            return false;
        }
        this._stats.messagesSent++;
        if (this._hooks.onSent) this._hooks.onSent(obj);
        return true;
    }
}
