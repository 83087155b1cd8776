// @ts-check
/**
 * Legend Realtime dashboard — the status badges: the connection indicator (live, degraded, reconnecting,
 * offline, signed out), the market badge in the exchange's time, and the banner for refused sessions.
 * Methods of RealtimeDashboard (dashboard.js installs them); their state: serviceReason, exchange.
 */
import { exchangeZone, fmtMarketTime, fmtMarketTimeLong, fullFormat, parseTime } from './format.js';

/** @typedef {import('./types.js').Dashboard} Dashboard */

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

/** @satisfies {ThisType<Dashboard>} */
export const connectionStatus = {
    _renderConnection(state) {
        let shown = state;
        if (state !== 'open' && state !== 'closed' && navigator.onLine === false) shown = 'closed';
        // Connected, but the server says live delivery is degraded (its backplane is down).
        if (shown === 'open' && this.ws.serviceStatus === 'degraded') shown = 'degraded';
        if (this.signedOut) shown = 'signed-out';
        const label = CONNECTION_LABEL[shown] || CONNECTION_LABEL.connecting;
        const reason = this.serviceReason;
        this.writer.write(this.dom.connLabel, label);
        this.frame.set('conn', () => {
            this.dom.conn.dataset.state = shown;
            this.dom.conn.title = shown === 'open'
                ? 'Streaming live'
                : shown === 'degraded' ? reason || 'The server cannot stream live right now; your connection stays open'
                    : shown === 'signed-out' ? 'Sign in to stream'
                        : shown === 'closed' ? 'Offline: click to reconnect' : 'Reconnecting: click to retry now';
            this.dom.table.classList.toggle('is-stale', shown !== 'open');
        });
    },

    /** The server says live delivery degraded or recovered: show it in the connection indicator. */
    _onServiceStatus(msg) {
        this.serviceReason = msg && typeof msg.reason === 'string' ? msg.reason : null;
        this._renderConnection(this.ws.state);
    },

    _onReconnecting(e) {
        // The server could not be asked at start: ask again, it may need a token.
        if (this.authMode === 'unknown' && e.attempt === 1) this._loadAuthConfig();
        const seconds = (e.delay / 1000).toFixed(1);
        this.frame.set('conn-retry', () => {
            this.dom.conn.title = 'Reconnecting: attempt ' + e.attempt + ' in ' + seconds + ' s (click to retry now)';
        });
    },

    _onClose(e) {
        if (e && e.code === 4401 && this.authMode !== 'dev') {
            this._showSignIn(this._refusal(e.reason));
        } else if (e && (e.code === 4401 || e.code === 4403)) {
            this._showBanner('The server refused this session (' + (e.reason || e.code) + '). Reload the page to try again.');
        }
    },

    _showBanner(text) {
        this.frame.set('banner', () => {
            this.dom.banner.hidden = !text;
            this.dom.banner.textContent = text || '';
        });
    },

    /** Exchange times ("opens 9:30 AM ET"), the browser's local time in the tooltip. */
    _onMarketStatus(msg) {
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
        this.writer.write(this.dom.marketLabel, MARKET_LABEL[status] || status.replace(/_/g, ' '));
        this.writer.write(this.dom.marketNext, next);
        this.frame.set('market', () => {
            this.dom.market.dataset.status = status;
            this.dom.market.title = title;
        });
    },
};
