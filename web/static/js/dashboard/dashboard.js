// @ts-check
/**
 * Legend Realtime dashboard — RealtimeDashboard: builds the page's parts (client, DOM writer, frame
 * batch, REST, sound), binds the page and the client's events, and starts and stops everything.
 * Parts that are objects of their own, each given its collaborators in its constructor (elements,
 * writer, frame batch, client or REST, small functions for what it asks of the page) and sharing no
 * `this` with the dashboard, which keeps its documented methods as one-line delegations:
 *   connection-status.js  ConnectionStatus (this.status): connection indicator, market badge, banner
 *   charts.js             ChartDialog (this.charts): the price chart dialog
 *   rules.js              AlertRules (this.alertRules): alert rules (REST)
 *   stats-panel.js        StatsPanel (this.statsPanel): the statistics panel
 *   sound.js              SoundAlerts (this.sound): sound alerts on or off, and the alert beep
 *   toasts.js             Toasts (this.toasts): the notifications of patterns and alert triggers
 *   activity.js           ActivityFeed (this.activity): the Activity list
 * Roles still written as methods in one module each and installed on its prototype here (their state
 * is set up in the constructor below, grouped by role):
 *   signin.js             JWT sign-in
 *   watchlist.js          rows, prices, sparklines, the watchlist (REST)
 *   alerts.js             patterns, alert triggers, Activity
 */
import { WebSocketClient } from '../websocket-client.js';
import { ActivityFeed } from './activity.js';
import { alerts, Beeper } from './alerts.js';
import { ChartDialog, recordPrice } from './charts.js';
import { ConnectionStatus } from './connection-status.js';
import { DomWriter, el, FrameBatch } from './dom.js';
import { USER_ID_RE, exchangeZone, fmtMarketTime, parseTicker } from './format.js';
import { Api } from './rest.js';
import { ALERT_KINDS, AlertRules } from './rules.js';
import { decodeToken, safeLink, signin, tokenFromHash } from './signin.js';
import { SoundAlerts } from './sound.js';
import { StatsPanel } from './stats-panel.js';
import { Toasts } from './toasts.js';
import { KEYS, storage } from './storage.js';
import { watchlist } from './watchlist.js';

/** @typedef {import('./types.js').Dashboard} Dashboard */

const DEFAULT_USER = 'demo';
const SEEN_EVERY_MS = 15000; // how often "this user is here" is written down while live

/** The class behind RealtimeDashboard; see RealtimeDashboard below for the type with every method. */
export class RealtimeDashboardBase {
    constructor(options) {
        const self = /** @type {Dashboard} */ (/** @type {unknown} */ (this));
        const opts = options || {};
        const params = new URLSearchParams(window.location.search);
        let userId = params.get('user_id');
        if (userId && USER_ID_RE.test(userId)) storage.set(KEYS.userId, userId);
        else userId = storage.get(KEYS.userId);
        if (!userId || !USER_ID_RE.test(userId)) userId = DEFAULT_USER;
        this.userId = userId;
        // A login service hands the token over in the address (#token=…): keep it, then drop it from
        // the address bar and the history.
        const handed = tokenFromHash(window.location.hash);
        if (handed) {
            storage.set(KEYS.token, handed);
            window.history.replaceState(null, '', window.location.pathname + window.location.search);
        }
        this.authMode = 'unknown'; // 'dev' | 'jwt' once GET /api/auth/config answered
        this.loginUrl = null;
        this.signedOut = false;
        this.expiresAt = null; // Date the token expires (JWT mode)
        // In development mode a stored token means nothing to the server: it is not sent.
        const tokenFn = () => (this.authMode === 'dev' ? null : storage.get(KEYS.token));

        /** @type {Record<string, any>} the page's elements, found once (_bindDom) */
        this.dom = {};
        /** @type {Promise<void> | undefined} settles once start() signed in and connected (or did not) */
        this.ready = undefined;
        this._aborter = new AbortController();
        this._signal = this._aborter.signal;
        this.api = new Api(userId, tokenFn, this._signal, (res) => self._onUnauthorized(res));
        this.frame = new FrameBatch();
        this.beeper = new Beeper();
        // ?user_id= serves development mode; with a token (JWT mode) the server ignores it.
        const clientOptions = Object.assign({ userId: userId, token: tokenFn }, opts.client || {});
        // Text goes through this page's own write cache; the client's statistics count its writes.
        this.writer = new DomWriter({
            batchUpdateDelay: clientOptions.batchUpdateDelay,
            maxCacheSize: clientOptions.maxCacheSize,
            requestAnimationFrame: clientOptions.requestAnimationFrame,
            log: (level, ...args) => this.ws._log(level, ...args),
        });
        this.ws = new WebSocketClient(Object.assign({ writer: this.writer }, clientOptions));

        this.rows = new Map(); // ticker -> row state; the only place rows come from
        this.patterns = new Map(); // ticker -> latest pattern chip, at most MAX_PATTERN_CHIPS
        this.watchlist = new Set(); // tickers saved in the user's watchlist
        this.watchlistMode = 'loading'; // 'server' | 'local' | 'degraded'
        this.timers = new Set();
        // When this user last had the page live here: missed triggers newer than that are "while away".
        this.lastSeen = Number(storage.get(KEYS.lastSeen(userId))) || null;
        this.seenTimer = null;
        this.rulesTimer = null;
        this.destroyed = false;
        this._offs = [];

        self._bindDom();
        /** The connection indicator, the market badge and the banner. */
        this.status = new ConnectionStatus({
            dom: this.dom,
            writer: this.writer,
            frame: this.frame,
            client: this.ws,
            signedOut: () => this.signedOut,
        });
        /** The price chart dialog (openChart() opens it). */
        this.charts = new ChartDialog({
            dom: this.dom,
            writer: this.writer,
            frame: this.frame,
            row: (ticker) => this.rows.get(ticker),
            exchange: () => this.status.exchange,
            destroyed: () => this.destroyed,
        });
        /** The alert rules: the list and the form. */
        this.alertRules = new AlertRules({
            api: this.api,
            dom: this.dom,
            frame: this.frame,
            showError: (node, text) => self._showError(node, text),
            destroyed: () => this.destroyed,
        });
        /** The Activity list. */
        this.activity = new ActivityFeed({ dom: this.dom, frame: this.frame, lastSeen: () => this.lastSeen });
        /** The notifications (toasts). */
        this.toasts = new Toasts({
            container: this.dom.toasts,
            frame: this.frame,
            later: (fn, ms) => self._later(fn, ms),
            cancel: (id) => {
                window.clearTimeout(id);
                this.timers.delete(id);
            },
        });
        /** Sound alerts: the choice, its button, the beep. */
        this.sound = new SoundAlerts({ beeper: this.beeper, button: this.dom.sound, writer: this.writer, frame: this.frame });
        /** The statistics panel (toggleStats() shows and hides it). */
        this.statsPanel = new StatsPanel({
            dom: { panel: this.dom.stats, list: this.dom.statsList, toggle: this.dom.statsToggle },
            getStats: () => this.ws.getStats(),
            writer: this.writer,
        });
        self._bindClient();
    }

    /** Whether alerts beep. */
    get soundEnabled() {
        return this.sound ? this.sound.enabled : false;
    }

    /** The PriceChart of the chart dialog, once one was opened (null before). */
    get chart() {
        return this.charts ? this.charts.chart : null;
    }

    /** The ticker whose chart is open, or null. */
    get chartTicker() {
        return this.charts ? this.charts.ticker : null;
    }

    /** 'line' or 'candles': how the chart draws prices. */
    get chartKind() {
        return this.charts ? this.charts.kind : 'line';
    }

    static parseTicker = parseTicker;
    static fmtMarketTime = fmtMarketTime;
    static exchangeZone = exchangeZone;
    static decodeToken = decodeToken;
    static tokenFromHash = tokenFromHash;
    static safeLink = safeLink;
    static recordPrice = recordPrice;
}

/**
 * Starting and stopping, and binding the page and the client's events to the roles' methods.
 * @satisfies {ThisType<Dashboard>}
 */
export const lifecycle = {
    start() {
        this.status.render(this.ws.state === 'closed' ? 'connecting' : this.ws.state);
        this.sound.render();
        this._renderEmpty();
        this.ws.subscribe('market_status');
        this.ws.subscribe('patterns');
        this.ws.subscribe('alerts');
        this.seenTimer = window.setInterval(() => this._markSeen(), SEEN_EVERY_MS);
        this._setLoading(true);
        this.ready = this._checkAuth().then((signedIn) => {
            if (!signedIn || this.destroyed) return;
            this.ws.connect();
            this.loadWatchlist().finally(() => this._setLoading(false));
            this.loadRules();
            this.loadAlertEvents();
        });
        return this;
    },

    /** Remove every handler, timer and listener, close the socket and the audio context. */
    destroy() {
        if (this.destroyed) return;
        this.destroyed = true;
        for (const off of this._offs) off();
        this._offs = [];
        this._aborter.abort(); // DOM listeners and pending fetches
        this.ws.destroy();
        this.writer.destroy();
        this.frame.clear();
        for (const id of this.timers) window.clearTimeout(id);
        this.timers.clear();
        this.statsPanel.destroy();
        window.clearInterval(this.seenTimer);
        this.seenTimer = null;
        this.beeper.close();
        this.charts.destroy();
    },

    _later(fn, ms) {
        const id = window.setTimeout(() => {
            this.timers.delete(id);
            if (!this.destroyed) fn();
        }, ms);
        this.timers.add(id);
        return id;
    },

    _bindClient() {
        const ws = this.ws;
        const on = (type, fn) => this._offs.push(ws.on(type, fn.bind(this)));
        on('statechange', (e) => this.status.render(e.state));
        on('reconnecting', this._onReconnecting);
        on('close', this._onClose);
        on('open', this._onOpen);
        on('price_update', this._onPrice);
        on('pattern_alert', this._onPattern);
        on('alert_trigger', this._onAlertTrigger);
        on('market_status', (msg) => this.status.onMarketStatus(msg));
        on('error', this._onServerError);
        on('service_status', (msg) => this.status.onServiceStatus(msg));
        on('connection', (msg) => this._renderUser(msg.user_id));
    },

    _bindDom() {
        const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
        this.dom = {
            conn: $('connection-status'),
            market: $('market-status'),
            rows: $('price-rows'),
            table: $('price-table'),
            rowTemplate: $('row-template'),
            count: $('watchlist-count'),
            watchForm: $('watchlist-form'),
            watchInput: $('watchlist-input'),
            watchNote: $('watchlist-note'),
            watchError: $('watchlist-error'),
            empty: $('watchlist-empty'),
            quickAdd: $('quick-add'),
            feed: $('activity-feed'),
            feedEmpty: $('activity-empty'),
            away: $('activity-away'),
            ruleForm: $('rule-form'),
            ruleTicker: $('rule-ticker'),
            ruleKind: $('rule-kind'),
            ruleThreshold: $('rule-threshold'),
            ruleList: $('rule-list'),
            ruleNote: $('rules-note'),
            ruleError: $('rules-error'),
            ruleTickers: $('rule-tickers'),
            rulesEmpty: $('rules-empty'),
            stats: $('stats-panel'),
            statsList: $('stats-list'),
            statsToggle: $('stats-toggle'),
            statsClose: $('stats-close'),
            sound: $('sound-toggle'),
            toasts: $('toasts'),
            banner: $('banner'),
            user: $('user-chip'),
            signOut: $('sign-out'),
            layout: document.querySelector('main.layout'),
            signin: $('signin'),
            signinMessage: $('signin-message'),
            signinLogin: $('signin-login'),
            signinForm: $('signin-form'),
            signinToken: $('signin-token'),
            signinError: $('signin-error'),
            chartDialog: $('chart-dialog'),
            chartCanvas: $('chart-canvas'),
            chartClose: $('chart-close'),
            chartNote: $('chart-note'),
        };
        const d = this.dom;
        d.connLabel = d.conn.querySelector('.conn-label');
        d.marketLabel = d.market.querySelector('.market-label');
        d.marketNext = d.market.querySelector('.market-next');
        d.chartTitle = d.chartDialog.querySelector('.chart-ticker');
        d.chartPrice = d.chartDialog.querySelector('.chart-price');
        d.chartChange = d.chartDialog.querySelector('.chart-change');
        d.chartKinds = Array.from(d.chartDialog.querySelectorAll('button[data-kind]'));
        this._renderUser(this.userId);

        for (const [value, label] of ALERT_KINDS) {
            const option = el('option', null, label);
            option.value = value;
            d.ruleKind.appendChild(option);
        }

        const listen = (target, type, fn) => target.addEventListener(type, fn, { signal: this._signal });
        listen(d.watchForm, 'submit', (event) => {
            event.preventDefault();
            this._submitWatchlist();
        });
        listen(d.watchInput, 'input', () => this._showError(d.watchError, null));
        listen(d.rows, 'click', (event) => {
            const row = event.target.closest('tr[data-ticker]');
            if (!row) return;
            if (event.target.closest('button.remove')) this.removeFromWatchlist(row.dataset.ticker);
            else if (event.target.closest('button.sym, td.col-chart')) this.openChart(row.dataset.ticker);
        });
        listen(d.chartClose, 'click', () => this.closeChart());
        listen(d.chartDialog, 'close', () => this.charts.onDialogClosed());
        listen(d.chartDialog, 'click', (event) => {
            if (event.target === d.chartDialog) this.closeChart(); // the backdrop
            const kind = event.target.closest('button[data-kind]');
            if (kind) this.setChartKind(kind.dataset.kind);
        });
        if (window.matchMedia) {
            listen(window.matchMedia('(prefers-color-scheme: dark)'), 'change', () => {
                this.charts.themeChanged();
            });
        }
        listen(d.signinForm, 'submit', (event) => {
            event.preventDefault();
            this.signIn(d.signinToken.value);
        });
        listen(d.signinToken, 'input', () => this._showError(d.signinError, null));
        listen(d.signOut, 'click', () => this.signOut());
        listen(d.quickAdd, 'click', (event) => {
            const button = event.target.closest('button[data-ticker]');
            if (button) this.addToWatchlist(button.dataset.ticker);
        });
        listen(d.ruleForm, 'submit', (event) => {
            event.preventDefault();
            this.alertRules.submit();
        });
        listen(d.ruleList, 'click', (event) => {
            const button = event.target.closest('button[data-rule-id]');
            if (button) this.deleteAlertRule(button.dataset.ruleId);
        });
        listen(d.statsToggle, 'click', () => this.toggleStats());
        listen(d.statsClose, 'click', () => this.toggleStats(false));
        listen(d.sound, 'click', () => this.setSoundEnabled(!this.sound.enabled));
        listen(d.conn, 'click', () => {
            if (this.ws.state !== 'open' && !this.signedOut) this.ws.connect(); // "retry now"
        });
        listen(d.toasts, 'click', (event) => {
            const toast = event.target.closest('.toast');
            if (toast) this.toasts.dismiss(toast);
        });
        // Recover at once when the network or the tab comes back, instead of waiting for the backoff.
        listen(window, 'online', () => this._retrySoon());
        listen(window, 'offline', () => this.status.render(this.ws.state));
        listen(document, 'visibilitychange', () => {
            if (document.visibilityState === 'visible') this._retrySoon();
        });
        // Let the browser keep the page in its back/forward cache: close the socket, reopen on return.
        listen(window, 'pagehide', () => {
            this._markSeen();
            this.ws.disconnect(1000, 'page hidden');
        });
        listen(window, 'pageshow', (event) => {
            if (event.persisted) this.ws.connect();
        });
        // A remembered "sound on" needs a gesture before the browser lets audio start.
        const unlock = () => this.sound.unlock();
        listen(document, 'pointerdown', unlock);
        listen(document, 'keydown', unlock);
    },

    /**
     * Show or hide the statistics panel (ws.getStats(), refreshed every second); returns whether it is now shown.
     * @param {boolean} [force]
     */
    toggleStats(force) {
        return this.statsPanel.toggle(force);
    },

    /** Read the user's alert rules again (GET /api/alerts/rules). */
    loadRules() {
        return this.alertRules.load();
    },

    /**
     * Create an alert rule ({ticker, kind, threshold}); re-arms when the price crosses back.
     * @param {{ticker?: unknown, kind?: unknown, threshold?: unknown}} input
     */
    createAlertRule(input) {
        return this.alertRules.create(input);
    },

    /**
     * Delete an alert rule by its id.
     * @param {unknown} id
     */
    deleteAlertRule(id) {
        return this.alertRules.remove(id);
    },

    /**
     * Open the price chart of `ticker` (a row on the page), then follow it live. Resolves once drawn;
     * to false when it cannot be.
     * @param {unknown} ticker
     */
    openChart(ticker) {
        return this.charts.open(ticker);
    },

    /** Close the price chart. */
    closeChart() {
        this.charts.close();
    },

    /**
     * Draw the chart as 'line' or 'candles' (remembered in this browser); returns the kind now used.
     * @param {unknown} kind
     */
    setChartKind(kind) {
        return this.charts.setKind(kind);
    },

    /**
     * Turn sound alerts on or off (what the sound button does); returns whether they are on.
     * @param {unknown} on
     */
    setSoundEnabled(on) {
        return this.sound.setEnabled(on);
    },

    _retrySoon() {
        if (!this.destroyed && this.ws.state === 'reconnecting') this.ws.connect();
        this.status.render(this.ws.state);
    },

    _markSeen() {
        if (this.ws.state === 'open') storage.set(KEYS.lastSeen(this.userId), String(Date.now()));
    },

    _onReconnecting(e) {
        // The server could not be asked at start: ask again, it may need a token.
        if (this.authMode === 'unknown' && e.attempt === 1) this._loadAuthConfig();
        this.status.showRetry(e);
    },

    _onClose(e) {
        if (e && e.code === 4401 && this.authMode !== 'dev') {
            this._showSignIn(this._refusal(e.reason));
        } else if (e && (e.code === 4401 || e.code === 4403)) {
            this.status.showBanner('The server refused this session (' + (e.reason || e.code) + '). Reload the page to try again.');
        }
    },

    _onOpen(e) {
        this.status.showBanner(null);
        this._markSeen();
        if (e && e.reconnected) {
            // The server may have restarted or the list changed elsewhere: follow it again.
            if (this.watchlistMode !== 'local') this.loadWatchlist();
            if (this.alertRules.available !== true) this.loadRules();
        }
    },

    _onServerError(msg) {
        if (msg && (msg.code === 'subscription_limit' || msg.code === 'invalid_subscription')) {
            this._showError(this.dom.watchError, msg.message);
        }
    },

    _renderUser(userId) {
        if (!userId) return;
        const chip = this.dom.user;
        this.writer.write(chip.querySelector('.user-name'), userId);
        this.writer.write(chip.querySelector('.avatar'), String(userId).slice(0, 1).toUpperCase());
    },
};

Object.assign(RealtimeDashboardBase.prototype, lifecycle, signin, watchlist, alerts);

/**
 * RealtimeDashboardBase with the role modules' methods in its type.
 * @type {Omit<typeof RealtimeDashboardBase, 'prototype'> & (new (options?: {client?: import('../client/types.js').ClientOptions}) => Dashboard)}
 */
export const RealtimeDashboard = /** @type {any} */ (RealtimeDashboardBase);
