// @ts-check
/**
 * Legend Realtime client — the client without its DOM helpers: options, state, events, the receive
 * path (frames, control messages) and statistics. Its other methods live in one module per role,
 * installed on its prototype here:
 *   connection.js     connection and reconnect, heartbeat, sending
 *   subscriptions.js  subscriptions and resume (since, duplicates, history replies)
 *   queue.js          the throttled queue (budget, conflation, bound)
 *   codes.js          message types, close codes, defaults
 * It never touches the DOM: WebSocketClient (websocket-client.js) adds updateElementIfChanged() and the
 * other DOM helpers of the specification on top, through the dashboard's DomWriter.
 */
import { CONTROL_TYPES, DEFAULTS, HEARTBEAT_TIMEOUT_CODE, NO_RECONNECT_CODES, nonNegative, positive } from './codes.js';
import { buildUrl, computeBackoff, connection, reconnectHint } from './connection.js';
import { queue } from './queue.js';
import { normalizeTicker, subscriptionKey, subscriptions } from './subscriptions.js';

/** @typedef {import('./types.js').Client} Client */
/** @typedef {import('./types.js').ClientOptions} ClientOptions */

/** The class behind WebSocketClient; see StreamClient below for the type with every method. */
export class StreamClientBase {
    /** @param {ClientOptions} [options] */
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

        this._destroyed = false;

        this._stats = {
            messagesReceived: 0,
            messagesSent: 0,
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

    /**
     * disconnect(), then forget every handler.
     * @this {Client}
     */
    destroy() {
        this.disconnect();
        this._destroyed = true;
        this._handlers.clear();
    }

    // ───────────── receiving ─────────────

    /** @this {Client} */
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

    /** @this {Client} */
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

    // ───────────── events ─────────────

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

    // ───────────── stats ─────────────

    getStats() {
        const streams = {};
        for (const [stream, seq] of this._lastSeq) streams[stream] = seq;
        return {
            connected: this._state === 'open',
            reconnecting: this._state === 'reconnecting',
            reconnectAttempts: this._reconnectAttempts,
            messagesReceived: this._stats.messagesReceived,
            messagesSent: this._stats.messagesSent,
            updatesApplied: 0, // the DOM writer's figures (websocket-client.js): this class writes nothing
            reconnects: this._stats.reconnects,
            errors: this._stats.errors,
            lastMessageTime: this._lastMessageAt === null ? null : new Date(this._lastMessageAt).toISOString(),
            subscriptions: Array.from(this._subs.keys()),
            queueSize: this._queue.length,
            pendingUpdates: 0,
            cacheSize: 0,
            // beyond the specification (docs/protocol.md)
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

    static computeBackoff = computeBackoff;
    static reconnectHint = reconnectHint;
    static normalizeTicker = normalizeTicker;
    static subscriptionKey = subscriptionKey;
    static buildUrl = buildUrl;
    static CONTROL_TYPES = CONTROL_TYPES;
    static NO_RECONNECT_CODES = NO_RECONNECT_CODES;
    static HEARTBEAT_TIMEOUT_CODE = HEARTBEAT_TIMEOUT_CODE;
    static DEFAULTS = DEFAULTS;
}

Object.assign(StreamClientBase.prototype, connection, subscriptions, queue);

/**
 * StreamClientBase with the role modules' methods in its type.
 * @type {Omit<typeof StreamClientBase, 'prototype'> & (new (options?: ClientOptions) => Client)}
 */
export const StreamClient = /** @type {any} */ (StreamClientBase);
