// @ts-check
/**
 * Legend Realtime — the WebSocket client of the specification (docs/protocol.md, "The browser client").
 *
 * An ES module without a build step or dependencies. A page loads it with
 *
 *   <script type="module" src="/static/js/websocket-client.js"></script>
 *
 * which defines `window.WebSocketClient` (with the helpers as static properties, e.g.
 * `WebSocketClient.computeBackoff`), or imports it: `import { WebSocketClient } from '/static/js/websocket-client.js'`.
 *
 * Usage:
 *
 *   const ws = new WebSocketClient({ userId: 'user123', maxMessagesPerSecond: 10, batchUpdateDelay: 100 });
 *   ws.connect();
 *   ws.subscribe('ticker', 'AAPL');            // also 'patterns', 'alerts', 'market_status', 'news', ...
 *   ws.subscribeBars('AAPL', '1m');            // = subscribe('bars', 'AAPL', '1m'); ws.onBar(handler)
 *   ws.subscribe('patterns', null, null, { filter: { pattern_type: { in: ['VCP'] }, score: { gte: 8 } } });
 *   ws.setFilter('patterns', { ticker: 'watchlist' }); // replaces it: the history comes again, filtered
 *   ws.on('error', (msg, info) => info.subscription && console.log('refused', info.subscription.channel));
 *   const off = ws.on('price_update', (msg, info) => {
 *       ws.updateElementIfChanged(document.getElementById('aapl-price'), msg.price, v => `$${v.toFixed(2)}`);
 *   });                                        // info.replayed is true for messages replayed from `history`
 *   ws.on('statechange', ({ state }) => console.log(state));   // connecting | open | reconnecting | closed
 *   ws.on('service_status', (msg, info) => console.log(msg.status, info.complete, info.gaps)); // ws.serviceStatus: the latest
 *   ws.on('gap', (msg, info) => console.log('lost', info.channel, info.from, info.to)); // ws.gaps: all of them
 *   console.log(ws.getStats());
 *   off();                                     // remove the handler
 *   ws.disconnect();                           // no reconnect after this (destroy() also drops handlers)
 *
 * Behaviour in brief:
 * - Reconnects with exponential backoff and *equal jitter* (see computeBackoff), except after disconnect()
 *   and close codes 4401/4403. A close whose reason carries `reconnect_after_ms=<n>` (a draining server's
 *   1001, see reconnectHint) adds n ms before that attempt's backoff. After a reconnect every subscription is sent again with `since` (the last
 *   `seq` *delivered to handlers* on each of its streams), so the server replays what was missed;
 *   duplicates are dropped. A message that is queued but never delivered (queue cleared by disconnect(),
 *   a price update dropped from a full queue) does not count: it is replayed on the next resume.
 * - Control messages (connection, subscription, history, pong, error, service_status, gap) are handled at
 *   once; `serviceStatus` is 'degraded' from a `service_status` degraded until the next ok or until the
 *   socket closes (a server only speaks up while degraded), else 'ok'; an ok is an all-clear only with
 *   info.complete (with `complete: false`, info.gaps names the streams that lost messages). A `gap`
 *   (messages lost to an outage longer than the stream's history) marks the stream incomplete (`gaps`),
 *   moves its resume position past the lost range and reloads its history: the owning subscription is
 *   sent again without `since` for it, filter kept; duplicates dropped. Everything
 *   else goes through a queue processed at most `maxMessagesPerSecond` per second; queued price
 *   updates of one ticker are conflated (the newest replaces the older in place). The queue holds
 *   `maxQueueSize` messages: when full, price updates are dropped (the oldest queued one first), but
 *   must-deliver messages (pattern_alert, alert_trigger, news, market_status, ...) never are — the
 *   queue grows beyond the bound for them (counted in `queueOverflows`); the server bounds its side.
 * - A subscription's filter (subscribe's options.filter; docs/protocol.md "Filters") is kept with it and
 *   sent again with `since` after a reconnect. setFilter() replaces it: `unsubscribe`, then `subscribe`
 *   with the new filter and no `since` (the history comes again, whole and filtered); what the server sent
 *   under the old filter before it read them is never delivered. Subscribing again with another filter
 *   widens it to the `or` of both, as the server does. A subscribe the server refuses (an `error` such as
 *   `invalid_filter`: frames are answered in order, so the client knows which) reaches the `error`
 *   handlers with `info.subscription` and is forgotten, not left pending.
 * - disconnect() delivers nothing further (queued messages are discarded) but keeps the resume position,
 *   so connect() later resumes after the last message delivered.
 * - DOM writes requested with updateElementIfChanged() are change-detected and applied together in one
 *   requestAnimationFrame callback, at most once every `batchUpdateDelay` ms, by a DomWriter
 *   (dashboard/dom.js; `writer` shares one, as the dashboard does). Nothing else touches the DOM.
 *   Call forgetElements(root) when removing elements from the page so the cache does not keep them.
 * - Pings every `heartbeatInterval`; a connection silent for 2 × heartbeatInterval is dropped and resumed.
 *
 * Beyond the documented options: `token` (JWT, a string or a function returning one; sent as the
 * WebSocket subprotocols ['bearer', token]), `WebSocket`, `setTimeout`, `clearTimeout`, `setInterval`,
 * `clearInterval`, `now`, `random`, `requestAnimationFrame`, `logger` (console by default, null for
 * silence), `location` (for URL auto-detection), `maxCacheSize` (5000), `noReconnectCodes` ([4401, 4403]),
 * `writer` (the DomWriter to write with).
 *
 * The client itself is split by role under client/ (connection, subscriptions, queue, codes); this
 * module adds the specification's DOM helpers and defines the global.
 */
import { StreamClient } from './client/client.js';
import { DomWriter } from './dashboard/dom.js';

export { BAR_INTERVALS, CONTROL_TYPES, DEFAULTS, HEARTBEAT_TIMEOUT_CODE, NO_RECONNECT_CODES } from './client/codes.js';
export { buildUrl, computeBackoff, reconnectHint } from './client/connection.js';
export { normalizeTicker, subscriptionKey } from './client/subscriptions.js';
export { DomWriter };

/** @typedef {import('./client/types.js').ClientOptions} ClientOptions */
/** @typedef {import('./dashboard/dom.js').TextTarget} TextTarget */

export class WebSocketClient extends StreamClient {
    /** @param {ClientOptions} [options] see the comment at the top of this file */
    constructor(options) {
        super(options);
        const opts = options || {};
        this._ownsWriter = !opts.writer;
        /** The DOM writer behind updateElementIfChanged(): the one given as `writer`, or its own. */
        this.writer = opts.writer || new DomWriter({
            batchUpdateDelay: this.options.batchUpdateDelay,
            maxCacheSize: this.options.maxCacheSize,
            requestAnimationFrame: opts.requestAnimationFrame,
            setTimeout: this._setTimeout,
            clearTimeout: this._clearTimeout,
            now: this._now,
            log: (level, ...args) => this._log(level, ...args),
        });
    }

    /**
     * Queue `element.textContent = formatter(value)` unless that text is already shown (or queued).
     * Writes are applied together in one animation frame, at most once every batchUpdateDelay ms.
     * @param {TextTarget | null | undefined} element
     * @param {unknown} value
     * @param {(value: any) => unknown} [formatter]
     * @returns {boolean} true if a write was queued
     */
    updateElementIfChanged(element, value, formatter) {
        if (this._destroyed) return false;
        return this.writer.write(element, value, formatter);
    }

    /** Forget every cached value (the next update of each element is written again). */
    clearCache() {
        this.writer.clear();
    }

    /**
     * Forget `element` (cached value and pending write): call it when the element leaves the page, so
     * the cache does not keep it alive. Returns true when something was forgotten.
     * @param {TextTarget | null | undefined} element
     */
    forgetElement(element) {
        return this.writer.forget(element);
    }

    /**
     * Forget `root` and every cached element inside it (root.contains()), e.g. a removed table row and
     * its cells. Returns how many elements were forgotten.
     * @param {TextTarget | null | undefined} root
     */
    forgetElements(root) {
        return this.writer.forgetWithin(root);
    }

    /** disconnect(), then forget handlers, and the caches and pending DOM writes of its own writer. */
    destroy() {
        super.destroy();
        if (this._ownsWriter) this.writer.destroy();
    }

    /** The specification's statistics (docs/protocol.md), DOM writes included, and more. */
    getStats() {
        const stats = super.getStats();
        const dom = this.writer.stats();
        stats.updatesApplied = dom.updatesApplied;
        stats.pendingUpdates = dom.pendingUpdates;
        stats.cacheSize = dom.cacheSize;
        stats.errors += dom.errors;
        return stats;
    }
}

globalThis.WebSocketClient = WebSocketClient;
