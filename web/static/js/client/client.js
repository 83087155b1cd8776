// @ts-check
/**
 * Legend Realtime client — the client without its DOM helpers: options, state, events, the receive
 * path (frames, control messages) and statistics. It is made of one part per role, each an object
 * of its own that gets its collaborators in its constructor:
 *   connection.js     Connection: connection and reconnect, heartbeat, sending
 *   subscriptions.js  Subscriptions: subscriptions and resume (since, duplicates, history replies)
 *   queue.js          MessageQueue: the throttled queue (budget, conflation, bound)
 *   codes.js          message types, close codes, defaults
 * The parts share nothing but the counters (`stats`) and the logger they are given; this class wires
 * them, routes each frame, and keeps the handlers. A `gap` (messages lost to this client) goes to the
 * subscriptions, which mark the stream incomplete and reload its history; the handlers hear of it
 * (`gap`), and a `service_status` ok names the streams still incomplete (info.complete, info.gaps).
 * It never touches the DOM: WebSocketClient (websocket-client.js) adds updateElementIfChanged() and the
 * other DOM helpers of the specification on top, through the dashboard's DomWriter.
 */
import { BAR_INTERVALS, CONTROL_TYPES, DEFAULTS, HEARTBEAT_TIMEOUT_CODE, NO_RECONNECT_CODES, nonNegative, positive } from './codes.js';
import { Connection, buildUrl, computeBackoff, reconnectHint } from './connection.js';
import { MessageQueue } from './queue.js';
import { Subscriptions, normalizeTicker, subscriptionKey } from './subscriptions.js';

/** @typedef {import('./types.js').ClientOptions} ClientOptions */
/** @typedef {import('./types.js').ClientStats} ClientStats */
/** @typedef {import('./types.js').Clock} Clock */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').BarMessage} BarMessage */
/** @typedef {import('./types.js').Filter} Filter */
/** @typedef {import('./types.js').SubscribeOptions} SubscribeOptions */
/** @typedef {import('./types.js').MessageInfo} MessageInfo */
/** @typedef {import('./types.js').GapRange} GapRange */

/** The class behind WebSocketClient. */
export class StreamClient {
    /** @param {ClientOptions} [options] */
    constructor(options) {
        const opts = options || {};
        const g = typeof globalThis !== 'undefined' ? globalThis : {};
        const settings = {
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
        /** The options in effect (defaults filled in, bad values replaced). */
        this.options = settings;

        this._setTimeout = opts.setTimeout || ((fn, ms) => g.setTimeout(fn, ms));
        this._clearTimeout = opts.clearTimeout || ((id) => g.clearTimeout(id));
        this._now = opts.now || (() => Date.now());
        this._logger = opts.logger === undefined ? (typeof console !== 'undefined' ? console : null) : opts.logger;
        /** @type {Clock} */
        const clock = {
            setTimeout: this._setTimeout,
            clearTimeout: this._clearTimeout,
            setInterval: opts.setInterval || ((fn, ms) => g.setInterval(fn, ms)),
            clearInterval: opts.clearInterval || ((id) => g.clearInterval(id)),
            now: this._now,
            random: opts.random || Math.random,
        };
        const log = (level, ...args) => this._log(level, ...args);

        const location = opts.location !== undefined ? opts.location : g.location;
        this.url = buildUrl(this.options.url, this.options.userId, location);

        this._connectionId = null;
        this._serverUserId = null;
        this._serviceStatus = 'ok';
        /** @type {Map<string, Function[]>} event type -> handlers */
        this._handlers = new Map();
        this._destroyed = false;
        /** @type {ClientStats} the counters every part adds to */
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

        const emit = (type, payload) => this._emit(type, payload, undefined);
        this._connection = new Connection({
            url: this.url,
            options: settings,
            WebSocket: opts.WebSocket || g.WebSocket || null,
            clock: clock,
            stats: this._stats,
            log: log,
            emit: emit,
            hooks: {
                onOpen: () => this._subscriptions.resubscribeAll(),
                onFrame: (event) => this._handleFrame(event),
                onClose: () => {
                    this._serviceStatus = 'ok'; // it described that session's server; the next one says its own
                },
                onDisconnect: () => this._queue.clear(),
                onSent: (obj) => this._subscriptions.noteSent(obj),
            },
        });
        this._queue = new MessageQueue({
            options: settings,
            clock: clock,
            stats: this._stats,
            log: log,
            deliver: (msg) => this._subscriptions.deliverData(msg, false, null),
        });
        this._subscriptions = new Subscriptions({
            connection: this._connection,
            queue: this._queue,
            stats: this._stats,
            log: log,
            deliver: (msg, replayed) => this._deliver(msg, replayed),
        });
    }

    /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
    get state() {
        return this._connection.state;
    }

    /** True while the socket is open. */
    get connected() {
        return this._connection.state === 'open';
    }

    /** 'degraded' while the server says live delivery is degraded (a `service_status` message), else 'ok'. */
    get serviceStatus() {
        return this._serviceStatus;
    }

    /**
     * The streams that lost messages to this client (`gap` frames, docs/protocol.md "Gaps"), with the
     * range lost: {stream: {from, to}}. Their history was reloaded; what is gone stays gone. Kept until a
     * `service_status` ok says everything arrived (`complete: true`), clearGaps(), or an unsubscribe.
     * @returns {Record<string, GapRange>}
     */
    get gaps() {
        return this._subscriptions.gaps();
    }

    /**
     * Forget the gaps of every stream, or of `stream` (e.g. once the user was told).
     * @param {string} [stream]
     */
    clearGaps(stream) {
        this._subscriptions.clearGaps(stream);
        return this;
    }

    /** Open the connection (no-op when already connecting or open; reconnects at once when waiting). */
    connect() {
        this._connection.connect();
        return this;
    }

    /**
     * Close the connection for good: no reconnect until connect() is called again. Queued messages are
     * discarded; the resume position stays.
     * @param {number} [code]
     * @param {string} [reason]
     */
    disconnect(code, reason) {
        this._connection.disconnect(code, reason);
        return this;
    }

    /** disconnect(), then forget every handler. */
    destroy() {
        this.disconnect();
        this._destroyed = true;
        this._handlers.clear();
    }

    /**
     * Subscribe to a channel (and ticker; and for 'bars' an interval); remembered across reconnects,
     * with its filter. `options.filter` asks the server for only the messages it matches
     * (docs/protocol.md, "Filters"); a second subscribe with another filter widens it to the `or` of
     * both, as the server does: setFilter() replaces it. Returns false if invalid.
     * @param {string} channel
     * @param {string | null} [ticker]
     * @param {string | null} [interval] one of BAR_INTERVALS, for the 'bars' channel only
     * @param {SubscribeOptions | null} [options] `filter`: an object, e.g. {score: {gte: 8}}
     */
    subscribe(channel, ticker, interval, options) {
        return this._subscriptions.subscribe(channel, ticker, interval, options);
    }

    /**
     * Replace the filter of a subscription (null or {}: none). The server is sent `unsubscribe`, then
     * `subscribe` with the new filter: the `history` reply comes again, whole and filtered (replayed),
     * and nothing that followed the old filter is delivered after this call. Handlers stay. Without
     * such a subscription it subscribes. Returns false if invalid.
     * @param {string} channel
     * @param {Filter | null} filter
     * @param {string | null} [ticker]
     * @param {string | null} [interval]
     */
    setFilter(channel, filter, ticker, interval) {
        return this._subscriptions.setFilter(channel, filter, ticker, interval);
    }

    /**
     * The filter of a subscription now (as the server acknowledged it, once it has), null for none,
     * undefined when there is no such subscription.
     * @param {string} channel
     * @param {string | null} [ticker]
     * @param {string | null} [interval]
     * @returns {Filter | null | undefined}
     */
    getFilter(channel, ticker, interval) {
        return this._subscriptions.filterOf(channel, ticker, interval);
    }

    /**
     * Unsubscribe; forgets the resume position and drops queued messages of its streams.
     * @param {string} channel
     * @param {string | null} [ticker]
     * @param {string | null} [interval]
     */
    unsubscribe(channel, ticker, interval) {
        return this._subscriptions.unsubscribe(channel, ticker, interval);
    }

    /**
     * Subscribe to a ticker's bars of one interval ('1m', '5m', '15m', '1h', '1d'): `bar` messages, the
     * open bar as it changes and each closed bar once (onBar). Returns false if invalid.
     * @param {string} ticker
     * @param {string} interval
     */
    subscribeBars(ticker, interval) {
        return this.subscribe('bars', ticker, interval);
    }

    /**
     * Stop the bars of a ticker and interval.
     * @param {string} ticker
     * @param {string} interval
     */
    unsubscribeBars(ticker, interval) {
        return this.unsubscribe('bars', ticker, interval);
    }

    /**
     * Listen to `bar` messages (every subscribed ticker and interval): on('bar', handler).
     * @param {(bar: BarMessage, info: {replayed: boolean}) => void} handler
     * @returns {() => void} removes the handler
     */
    onBar(handler) {
        return this.on('bar', handler);
    }

    /**
     * Send a message. subscribe/unsubscribe messages go through subscribe()/unsubscribe(), so they
     * are remembered and sent on open when disconnected. Anything else is sent only when open:
     * returns false when it was dropped.
     * @param {any} obj
     */
    send(obj) {
        if (!obj || typeof obj !== 'object') return false;
        if (obj.type === 'subscribe') return this.subscribe(obj.channel, obj.ticker, obj.interval, { filter: obj.filter });
        if (obj.type === 'unsubscribe') return this.unsubscribe(obj.channel, obj.ticker, obj.interval);
        return this._connection.sendFrame(obj);
    }

    // ───────────── receiving ─────────────

    _handleFrame(event) {
        this._stats.messagesReceived++;
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
        } else if (this._subscriptions.accept(msg, null)) {
            this._queue.push(msg);
        }
    }

    /** @param {Message} msg */
    _handleControl(msg) {
        /** @type {MessageInfo} */
        const info = { replayed: false };
        switch (msg.type) {
            case 'connection':
                if (msg.connection_id !== undefined) this._connectionId = msg.connection_id;
                if (msg.user_id !== undefined) this._serverUserId = msg.user_id;
                if (msg.heartbeat_timeout !== undefined) this._connection.applyServerHeartbeat(msg.heartbeat_timeout);
                break;
            case 'subscription':
                this._subscriptions.acknowledge(msg);
                break;
            case 'history':
                this._subscriptions.handleHistory(msg);
                break;
            case 'pong':
                this._connection.notePong();
                this._subscriptions.notePong();
                break;
            case 'service_status': {
                this._serviceStatus = msg.status === 'degraded' ? 'degraded' : 'ok';
                // An ok is an all-clear only when it says so: `complete: false` names streams with a gap open.
                const named = Array.isArray(msg.gaps) ? msg.gaps.filter((s) => typeof s === 'string' && s !== '') : [];
                info.complete = this._serviceStatus === 'ok' && msg.complete !== false && named.length === 0;
                if (info.complete) this._subscriptions.clearGaps();
                info.gaps = Array.from(new Set(named.concat(Object.keys(this._subscriptions.gaps())))).sort();
                break;
            }
            case 'gap': {
                const gap = this._subscriptions.gap(msg);
                if (gap) Object.assign(info, gap);
                break;
            }
            case 'error': {
                this._stats.errors++;
                this._log('warn', 'WebSocketClient: server error: ' + msg.message + (msg.code ? ' (' + msg.code + ')' : ''));
                const refused = this._subscriptions.refuse(msg);
                if (refused) info.subscription = refused;
                break;
            }
            default:
                break;
        }
        this._emit(msg.type, msg, info);
        this._emit('*', msg, info);
    }

    // ───────────── events ─────────────

    /**
     * Listen to a server message type ('price_update', 'news', ...), '*' (every message), or a
     * lifecycle event ('open', 'close', 'reconnecting', 'statechange'). Handlers receive
     * (payload, info); for messages info.replayed tells a replay from `history`; for an `error` that
     * refused a subscribe, info.subscription names it (it is no longer pending); for a `gap`, info has
     * channel, from, to, reloading and subscriptions; for a `service_status`, info.complete (an ok that
     * claims everything arrived) and info.gaps (the streams that lost messages).
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
        const connection = this._connection;
        const lastMessageAt = connection.lastMessageAt;
        return {
            connected: connection.state === 'open',
            reconnecting: connection.state === 'reconnecting',
            reconnectAttempts: connection.reconnectAttempts,
            messagesReceived: this._stats.messagesReceived,
            messagesSent: this._stats.messagesSent,
            updatesApplied: 0, // the DOM writer's figures (websocket-client.js): this class writes nothing
            reconnects: this._stats.reconnects,
            errors: this._stats.errors,
            lastMessageTime: lastMessageAt === null ? null : new Date(lastMessageAt).toISOString(),
            subscriptions: this._subscriptions.keys(),
            queueSize: this._queue.size,
            pendingUpdates: 0,
            cacheSize: 0,
            // beyond the specification (docs/protocol.md)
            droppedMessages: this._stats.droppedMessages,
            duplicatesDropped: this._stats.duplicatesDropped,
            conflatedMessages: this._stats.conflatedMessages,
            queueOverflows: this._stats.queueOverflows,
            latencyMs: connection.latencyMs,
            state: connection.state,
            serviceStatus: this._serviceStatus,
            connectionId: this._connectionId,
            url: this.url,
            streams: this._subscriptions.positions(),
            gaps: this._subscriptions.gaps(),
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
    static BAR_INTERVALS = BAR_INTERVALS;
    static NO_RECONNECT_CODES = NO_RECONNECT_CODES;
    static HEARTBEAT_TIMEOUT_CODE = HEARTBEAT_TIMEOUT_CODE;
    static DEFAULTS = DEFAULTS;
}
