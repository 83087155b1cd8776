// @ts-check
/**
 * Legend Realtime dashboard — the status badges: the connection indicator (live, degraded, reconnecting,
 * offline, signed out), the market badge in the exchange's time, and the banner for refused sessions.
 * An object of its own: it gets its elements, the DOM writer, the frame batch, the client (its state
 * and serviceStatus) and a way to ask whether the user signed out; it keeps the degraded reason and the
 * exchange to itself. The dashboard decides what a close or a refusal means (sign-in, banner).
 */
import { DEFAULT_EXCHANGE, exchangeZone, fmtMarketTime, fmtMarketTimeLong, fullFormat, parseTime } from './format.js';

/** @typedef {import('./dom.js').DomWriter} DomWriter */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */

export const MARKET_LABEL = {
    open: 'Market open',
    closed: 'Market closed',
    pre_market: 'Pre-market',
    after_hours: 'After hours',
    halted: 'Trading halted',
};

export const CONNECTION_LABEL = {
    open: 'Live',
    degraded: 'Live (degraded: updates may be delayed)',
    connecting: 'Connecting…',
    reconnecting: 'Reconnecting…',
    closed: 'Offline',
    'signed-out': 'Signed out',
};

export class ConnectionStatus {
    /**
     * @param {object} parts
     * @param {Record<string, any>} parts.dom conn, connLabel, table, banner, market, marketLabel, marketNext, simulated
     * @param {DomWriter} parts.writer writes text
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies classes and attributes once per frame
     * @param {{state: string, serviceStatus: string}} parts.client the WebSocketClient
     * @param {() => boolean} parts.signedOut whether the user signed out (JWT mode)
     */
    constructor({ dom, writer, frame, client, signedOut }) {
        this._dom = dom;
        this._writer = writer;
        this._frame = frame;
        this._client = client;
        this._signedOut = signedOut;
        /** @type {string | null} why the server said live delivery is degraded */
        this._serviceReason = null;
        /** The exchange calendar of the latest market_status ('XNYS' until one says otherwise). */
        this.exchange = DEFAULT_EXCHANGE;
    }

    /**
     * Show the connection state: 'connecting' | 'open' | 'reconnecting' | 'closed' (degraded, offline
     * and signed out are told apart here).
     * @param {string} state
     */
    render(state) {
        let shown = state;
        if (state !== 'open' && state !== 'closed' && navigator.onLine === false) shown = 'closed';
        // Connected, but the server says live delivery is degraded (its backplane is down).
        if (shown === 'open' && this._client.serviceStatus === 'degraded') shown = 'degraded';
        if (this._signedOut()) shown = 'signed-out';
        const label = CONNECTION_LABEL[shown] || CONNECTION_LABEL.connecting;
        const reason = this._serviceReason;
        const dom = this._dom;
        this._writer.write(dom.connLabel, label);
        this._frame.set('conn', () => {
            dom.conn.dataset.state = shown;
            dom.conn.title = shown === 'open'
                ? 'Streaming live'
                : shown === 'degraded' ? reason || 'The server cannot stream live right now; your connection stays open'
                    : shown === 'signed-out' ? 'Sign in to stream'
                        : shown === 'closed' ? 'Offline: click to reconnect' : 'Reconnecting: click to retry now';
            dom.table.classList.toggle('is-stale', shown !== 'open');
        });
    }

    /** The server says live delivery degraded or recovered: show it in the connection indicator. */
    onServiceStatus(msg) {
        this._serviceReason = msg && typeof msg.reason === 'string' ? msg.reason : null;
        this.render(this._client.state);
    }

    /**
     * The client waits `delay` ms before reconnect attempt `attempt`: say so on the indicator.
     * @param {{attempt: number, delay: number}} e the client's 'reconnecting' event
     */
    showRetry(e) {
        const seconds = (e.delay / 1000).toFixed(1);
        this._frame.set('conn-retry', () => {
            this._dom.conn.title = 'Reconnecting: attempt ' + e.attempt + ' in ' + seconds + ' s (click to retry now)';
        });
    }

    /**
     * Show `text` in the banner; null hides it.
     * @param {string | null} text
     */
    showBanner(text) {
        this._frame.set('banner', () => {
            this._dom.banner.hidden = !text;
            this._dom.banner.textContent = text || '';
        });
    }

    /**
     * The server's connection acknowledgement: show the "Simulated prices" badge when it says its prices
     * are the demo's walk (simulated_prices), hide it otherwise.
     * @param {{simulated_prices?: unknown, quote_provider?: unknown}} msg
     */
    onConnection(msg) {
        const simulated = !!msg && msg.simulated_prices === true;
        const provider = msg && typeof msg.quote_provider === 'string' ? msg.quote_provider : 'simulated';
        this._frame.set('simulated', () => {
            const badge = this._dom.simulated;
            badge.hidden = !simulated;
            badge.title = simulated
                ? 'These prices are a demo, not a market feed (quotes.provider = "' + provider + '"): a random walk '
                    + 'per ticker that moves at all hours, also while the market is closed. The market status '
                    + 'follows the real exchange calendar.'
                : '';
        });
    }

    /** Exchange times ("opens 9:30 AM ET"), the browser's local time in the tooltip. */
    onMarketStatus(msg) {
        const status = String(msg.status || 'unknown');
        const isOpen = status === 'open';
        if (typeof msg.exchange === 'string' && msg.exchange) this.exchange = msg.exchange;
        const zone = exchangeZone(this.exchange);
        const when = isOpen ? parseTime(msg.next_close) : parseTime(msg.next_open);
        const verb = isOpen ? 'closes' : 'opens';
        let next = '';
        let title = MARKET_LABEL[status] || status;
        if (when) {
            next = verb + ' ' + fmtMarketTime(when, zone);
            title += ' (' + this.exchange + '): ' + verb + ' ' + fmtMarketTimeLong(when, zone);
            if (isOpen && msg.early_close) title += ', early close';
            if (zone) title += '\nYour time: ' + fullFormat.format(when);
        }
        const dom = this._dom;
        this._writer.write(dom.marketLabel, MARKET_LABEL[status] || status.replace(/_/g, ' '));
        this._writer.write(dom.marketNext, next);
        this._frame.set('market', () => {
            dom.market.dataset.status = status;
            dom.market.title = title;
        });
    }
}
