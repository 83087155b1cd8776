// @ts-check
/**
 * Legend Realtime dashboard — RealtimeDashboard: builds the page's parts (client, DOM writer, frame
 * batch, REST, sound), binds the page and the client's events, and starts and stops everything.
 * Every part is an object of its own, given its collaborators in its constructor (elements, writer,
 * frame batch, client or REST, small functions for what it asks of the page) and sharing no `this`
 * with the dashboard, which keeps its documented methods as one-line delegations:
 *   connection-status.js  ConnectionStatus (this.status): connection indicator, market badge, the
 *                         "Simulated prices" badge, banner
 *   signin.js             SignIn (this.signin): JWT sign-in, the auth mode, the sign-in panel
 *   watchlist.js          Watchlist (this.watchlist): rows, prices, sparklines, pattern chips, the
 *                         server's note on a ticker (its subscription reply), the watchlist (REST)
 *   alerts.js             AlertFeed (this.alerts): pattern detections and alert triggers (live, replayed
 *                         and past), what they list, notify and mark
 *   charts.js             ChartDialog (this.charts): the price chart dialog
 *   rules.js              AlertRules (this.alertRules): alert rules (REST): the list, create, edit,
 *                         pause, resume, delete, preview (marked on the chart)
 *   rule-form.js          RuleForm (this.ruleForm): the rule form's fields, errors and session hint
 *   stats-panel.js        StatsPanel (this.statsPanel): the statistics panel
 *   sound.js              SoundAlerts (this.sound): sound alerts on or off, and the alert beep
 *   voice.js              VoiceAlerts (this.voice): voice alerts on or off, triggers read out
 *   notifications.js      NotificationsPanel (this.notifications): Web Push for this browser (the
 *                         service worker /static/sw.js), webhooks, e-mail, their tests
 *   toasts.js             Toasts (this.toasts): the notifications of patterns and alert triggers
 *   activity.js           ActivityFeed (this.activity): the Activity list
 *   gap-notice.js         GapNotice (this.gapNotice): "some alerts may be missing" after a `gap`
 *   pattern-settings.js   PatternSettings (this.patternSettings): which pattern alerts the Activity list
 *                         shows, sent as the `patterns` subscription's filter
 * The dashboard itself keeps who the user is (userId, lastSeen), its timers, and the page's wiring.
 */
import { WebSocketClient } from '../websocket-client.js';
import { ActivityFeed } from './activity.js';
import { AlertFeed, Beeper } from './alerts.js';
import { BARS_PAGE } from './bars.js';
import { ChartDialog, recordPrice } from './charts.js';
import { ConnectionStatus } from './connection-status.js';
import { DomWriter, FrameBatch } from './dom.js';
import { GapNotice } from './gap-notice.js';
import { USER_ID_RE, exchangeZone, fmtMarketTime, parseTicker } from './format.js';
import { NotificationsPanel } from './notifications.js';
import { PatternSettings, matchesPrefs } from './pattern-settings.js';
import { Api, errorText } from './rest.js';
import { RuleForm } from './rule-form.js';
import { AlertRules } from './rules.js';
import { SignIn, decodeToken, safeLink, tokenFromHash } from './signin.js';
import { SoundAlerts } from './sound.js';
import { StatsPanel } from './stats-panel.js';
import { Toasts } from './toasts.js';
import { VoiceAlerts } from './voice.js';
import { KEYS, storage } from './storage.js';
import { Watchlist } from './watchlist.js';

const DEFAULT_USER = 'demo';
const SEEN_EVERY_MS = 15000; // how often "this user is here" is written down while live

/** The dashboard page: its parts, wired to the page and to the client's events. */
export class RealtimeDashboard {
    /** @param {{client?: import('../client/types.js').ClientOptions}} [options] */
    constructor(options) {
        const opts = options || {};
        const params = new URLSearchParams(window.location.search);
        let userId = params.get('user_id');
        if (userId && USER_ID_RE.test(userId)) storage.set(KEYS.userId, userId);
        else userId = storage.get(KEYS.userId);
        if (!userId || !USER_ID_RE.test(userId)) userId = DEFAULT_USER;
        this.userId = userId;
        /** The chart asked for in the address (?chart=AAPL: a notification's click), opened once live. */
        this.requestedChart = parseTicker(params.get('chart'));
        // A login service hands the token over in the address (#token=…): keep it, then drop it from
        // the address bar and the history.
        const handed = tokenFromHash(window.location.hash);
        if (handed) {
            storage.set(KEYS.token, handed);
            window.history.replaceState(null, '', window.location.pathname + window.location.search);
        }
        const tokenFn = () => this.signin.token();

        /** @type {Record<string, any>} the page's elements, found once (_bindDom) */
        this.dom = {};
        /** @type {Promise<void> | undefined} settles once start() signed in and connected (or did not) */
        this.ready = undefined;
        this._aborter = new AbortController();
        this._signal = this._aborter.signal;
        this.api = new Api(userId, tokenFn, this._signal, (res) => this.signin.onUnauthorized(res));
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

        /** @type {Set<number>} pending _later() timers, cleared by destroy() */
        this.timers = new Set();
        // When this user last had the page live here: missed triggers newer than that are "while away".
        this.lastSeen = Number(storage.get(KEYS.lastSeen(userId))) || null;
        this.seenTimer = null;
        this.destroyed = false;
        /** @type {(() => void)[]} removes the client's event handlers */
        this._offs = [];
        const destroyed = () => this.destroyed;
        const showError = (node, text) => this._showError(node, text);

        this._bindDom();
        /** Sign-in (JWT mode): the auth mode, the token check, the sign-in panel. */
        this.signin = new SignIn({
            api: this.api,
            dom: this.dom,
            frame: this.frame,
            showError: showError,
            signedInAs: (id) => this._signedInAs(id),
            stop: () => this._stopStreaming(),
            reload: () => window.location.reload(),
            destroyed: destroyed,
        });
        /** The connection indicator, the market badge and the banner. */
        this.status = new ConnectionStatus({
            dom: this.dom,
            writer: this.writer,
            frame: this.frame,
            client: this.ws,
            signedOut: () => this.signin.signedOut,
        });
        /** The price chart dialog (openChart() opens it). */
        this.charts = new ChartDialog({
            dom: this.dom,
            writer: this.writer,
            frame: this.frame,
            row: (ticker) => this.watchlist.row(ticker),
            exchange: () => this.status.exchange,
            loadBars: (ticker, interval, before) => this._loadBars(ticker, interval, before),
            subscribeBars: (ticker, interval, onBar) => this._subscribeBars(ticker, interval, onBar),
            destroyed: destroyed,
        });
        /** The watchlist: its rows and their live prices, the saved tickers. */
        this.watchlist = new Watchlist({
            api: this.api,
            client: this.ws,
            dom: this.dom,
            writer: this.writer,
            frame: this.frame,
            chart: this.charts,
            showError: showError,
            userId: () => this.userId,
            destroyed: destroyed,
        });
        const zone = () => exchangeZone(this.status.exchange);
        /** The alert rule form: its fields, their errors, the session hint. */
        this.ruleForm = new RuleForm({ form: this.dom.ruleForm, listen: (target, type, fn) => this._listen(target, type, fn), zone: zone });
        /** The alert rules: the list, and what the form does. */
        this.alertRules = new AlertRules({
            api: this.api,
            form: this.ruleForm,
            dom: this.dom,
            frame: this.frame,
            showError: showError,
            zone: zone,
            showMarks: (ticker, marks) => this._showMarks(ticker, marks),
            later: (fn, ms) => this._later(fn, ms),
            destroyed: destroyed,
        });
        /** The Activity list. */
        this.activity = new ActivityFeed({ dom: this.dom, frame: this.frame, lastSeen: () => this.lastSeen, zone: zone });
        /** The notice that alerts may be missing after a connection problem (a `gap`). */
        this.gapNotice = new GapNotice({ dom: this.dom, frame: this.frame });
        /** The pattern settings: the `patterns` subscription's filter, and what the Activity list keeps. */
        this.patternSettings = new PatternSettings({
            dom: this.dom,
            frame: this.frame,
            userId: () => this.userId,
            onChange: () => this._applyPatternSettings(),
        });
        /** The notifications (toasts). */
        this.toasts = new Toasts({
            container: this.dom.toasts,
            frame: this.frame,
            later: (fn, ms) => this._later(fn, ms),
            cancel: (id) => {
                window.clearTimeout(id);
                this.timers.delete(id);
            },
            zone: zone,
        });
        /** Sound alerts: the choice, its button, the beep. */
        this.sound = new SoundAlerts({ beeper: this.beeper, button: this.dom.sound, writer: this.writer, frame: this.frame });
        /** Voice alerts: the choice, its button, triggers read out. */
        this.voice = new VoiceAlerts({
            speech: window.speechSynthesis,
            utterance: (text) => new window.SpeechSynthesisUtterance(text),
            button: this.dom.voice,
            writer: this.writer,
            frame: this.frame,
        });
        /** Where alerts go besides this page: push for this browser, webhooks, e-mail. */
        this.notifications = new NotificationsPanel({
            api: this.api,
            dom: this.dom,
            frame: this.frame,
            push: {
                container: 'serviceWorker' in navigator && 'PushManager' in window ? navigator.serviceWorker : null,
                Notification: 'Notification' in window ? window.Notification : null,
            },
            destroyed: destroyed,
        });
        /** Pattern detections and alert triggers: listed, notified, marked on their rows. */
        this.alerts = new AlertFeed({
            api: this.api,
            activity: this.activity,
            toasts: this.toasts,
            sound: this.sound,
            voice: this.voice,
            watchlist: this.watchlist,
            rules: this.alertRules,
            later: (fn, ms) => this._later(fn, ms),
            destroyed: destroyed,
        });
        /** The statistics panel (toggleStats() shows and hides it). */
        this.statsPanel = new StatsPanel({
            dom: { panel: this.dom.stats, list: this.dom.statsList, toggle: this.dom.statsToggle },
            getStats: () => this.ws.getStats(),
            writer: this.writer,
        });
        this._bindClient();
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

    /** 'line' or 'candles': how the chart draws prices (when the server has no bars). */
    get chartKind() {
        return this.charts ? this.charts.kind : 'line';
    }

    /** The chart's bar interval: '1m', '5m', '15m', '1h' or '1d'. */
    get chartInterval() {
        return this.charts ? this.charts.interval : '1m';
    }

    /** @type {Map<string, import('./types.js').Row>} ticker -> the state of its row on the page */
    get rows() {
        return this.watchlist.rows;
    }

    /** Where the watchlist is kept: 'loading' | 'server' | 'local' (this browser) | 'degraded'. */
    get watchlistMode() {
        return this.watchlist.mode;
    }

    /** The server's auth mode: 'unknown' until GET /api/auth/config answered, then 'dev' | 'jwt'. */
    get authMode() {
        return this.signin.mode;
    }

    /** Whether the sign-in panel is shown instead of the stream (JWT mode). */
    get signedOut() {
        return this.signin.signedOut;
    }

    /** When the token expires (JWT mode; null when unknown). */
    get expiresAt() {
        return this.signin.expiresAt;
    }

    static parseTicker = parseTicker;
    static fmtMarketTime = fmtMarketTime;
    static exchangeZone = exchangeZone;
    static decodeToken = decodeToken;
    static tokenFromHash = tokenFromHash;
    static safeLink = safeLink;
    static recordPrice = recordPrice;

    /** Show the page, sign in (JWT mode), then connect and load the watchlist, rules and past triggers. Returns this. */
    start() {
        this.status.render(this.ws.state === 'closed' ? 'connecting' : this.ws.state);
        this.sound.render();
        this.voice.render();
        this.notifications.render();
        this.watchlist.renderEmpty();
        this.ws.subscribe('market_status');
        this.ws.subscribe('patterns', null, null, { filter: this.patternSettings.filter() });
        this.ws.subscribe('alerts');
        this.ws.subscribe('watchlist'); // a change made in another tab (or through the API) shows here
        this.seenTimer = window.setInterval(() => this._markSeen(), SEEN_EVERY_MS);
        this.watchlist.setLoading(true);
        this.ready = this.signin.check().then((signedIn) => {
            if (!signedIn || this.destroyed) return;
            this.ws.connect();
            this.loadWatchlist().finally(() => {
                this.watchlist.setLoading(false);
                if (this.requestedChart) this._openRequested(this.requestedChart);
            });
            this.loadRules();
            this.loadAlertEvents();
            this.notifications.register();
            this.notifications.load();
        });
        return this;
    }

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
    }

    /**
     * Run `fn` after `ms` unless the page was destroyed first (destroy() clears what is pending).
     * @param {() => void} fn
     * @param {number} ms
     */
    _later(fn, ms) {
        const id = window.setTimeout(() => {
            this.timers.delete(id);
            if (!this.destroyed) fn();
        }, ms);
        this.timers.add(id);
        return id;
    }

    _bindClient() {
        const ws = this.ws;
        const on = (type, fn) => this._offs.push(ws.on(type, fn.bind(this)));
        on('statechange', (e) => this.status.render(e.state));
        on('reconnecting', this._onReconnecting);
        on('close', this._onClose);
        on('open', this._onOpen);
        on('price_update', (msg, info) => this.watchlist.onPrice(msg, info));
        on('pattern_alert', (msg, info) => {
            this.patternSettings.noteType(msg.pattern_type);
            this.alerts.onPattern(msg, info);
        });
        on('watchlist', (msg) => this.watchlist.follow(msg.tickers));
        on('alert_trigger', (msg, info) => this.alerts.onAlertTrigger(msg, info));
        on('market_status', (msg) => {
            this.status.onMarketStatus(msg);
            this.alertRules.onMarketStatus(msg);
        });
        on('error', this._onServerError);
        on('service_status', (msg, info) => {
            this.status.onServiceStatus(msg);
            this.gapNotice.onServiceStatus(msg, info);
        });
        on('gap', (msg, info) => this.gapNotice.onGap(msg, info));
        on('connection', (msg) => {
            this._renderUser(msg.user_id);
            this.status.onConnection(msg);
        });
        on('subscription', (msg) => this.watchlist.onSubscription(msg));
    }

    _bindDom() {
        const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
        this.dom = {
            conn: $('connection-status'),
            market: $('market-status'),
            simulated: $('simulated-badge'),
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
            patternForm: $('pattern-form'),
            patternTypes: $('pattern-types'),
            patternMinScore: $('pattern-min-score'),
            patternWatchlist: $('pattern-watchlist-only'),
            patternSummary: $('pattern-summary'),
            patternError: $('pattern-error'),
            feedEmpty: $('activity-empty'),
            gapNotice: $('activity-gap'),
            gapText: $('activity-gap-text'),
            gapDismiss: $('activity-gap-dismiss'),
            away: $('activity-away'),
            ruleForm: $('rule-form'),
            rulePreview: $('rule-preview'),
            ruleCancel: $('rule-cancel'),
            rulePreviewNote: $('rule-preview-note'),
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
            voice: $('voice-toggle'),
            notifyNote: $('notify-note'),
            notifyError: $('notify-error'),
            pushToggle: $('push-toggle'),
            pushStatus: $('push-status'),
            webhookForm: $('webhook-form'),
            webhookUrl: $('webhook-url'),
            webhookUrlError: $('webhook-url-error'),
            webhookSecret: $('webhook-secret'),
            webhookSecretError: $('webhook-secret-error'),
            emailForm: $('email-form'),
            emailAddress: $('email-address'),
            emailAddressError: $('email-address-error'),
            destinations: $('destination-list'),
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
        d.chartIntervals = Array.from(d.chartDialog.querySelectorAll('button[data-interval]'));
        d.chartKindGroup = d.chartDialog.querySelector('.chart-kinds');
        d.chartIntervalGroup = d.chartDialog.querySelector('.chart-intervals');
        this._renderUser(this.userId);

        const listen = (target, type, fn) => this._listen(target, type, fn);
        listen(d.watchForm, 'submit', (event) => {
            event.preventDefault();
            this.watchlist.submit();
        });
        listen(d.watchInput, 'input', () => this._showError(d.watchError, null));
        listen(d.patternForm, 'change', () => this.patternSettings.readForm());
        listen(d.gapDismiss, 'click', () => this.gapNotice.dismiss());
        listen(d.patternForm, 'submit', (event) => {
            event.preventDefault(); // Enter in the score field
            this.patternSettings.readForm();
        });
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
            const interval = event.target.closest('button[data-interval]');
            if (interval) this.setChartInterval(interval.dataset.interval);
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
        listen(d.rulePreview, 'click', () => this.previewAlertRule());
        listen(d.ruleCancel, 'click', () => this.alertRules.cancelEdit());
        listen(d.ruleList, 'click', (event) => {
            const button = event.target.closest('button[data-rule-id]');
            if (!button) return;
            const id = button.dataset.ruleId;
            const action = button.dataset.ruleAction;
            if (action === 'edit') this.editAlertRule(id);
            else if (action === 'pause') this.pauseAlertRule(id);
            else if (action === 'resume') this.resumeAlertRule(id);
            else if (action === 'delete') this.deleteAlertRule(id);
        });
        listen(d.statsToggle, 'click', () => this.toggleStats());
        listen(d.statsClose, 'click', () => this.toggleStats(false));
        listen(d.sound, 'click', () => this.setSoundEnabled(!this.sound.enabled));
        listen(d.voice, 'click', () => this.setVoiceEnabled(!this.voice.enabled));
        listen(d.pushToggle, 'click', () => this.setPushEnabled(!this.notifications.pushOn));
        listen(d.webhookForm, 'submit', (event) => {
            event.preventDefault();
            this.notifications.addWebhook(d.webhookUrl.value, d.webhookSecret.value);
        });
        listen(d.emailForm, 'submit', (event) => {
            event.preventDefault();
            this.notifications.addEmail(d.emailAddress.value);
        });
        listen(d.destinations, 'click', (event) => {
            const button = event.target.closest('button[data-action]');
            const item = button && button.closest('li[data-destination-id]');
            if (!item) return;
            if (button.dataset.action === 'test') this.notifications.test(item.dataset.channel, item.dataset.destinationId);
            else if (button.dataset.action === 'remove') this.notifications.remove(item.dataset.channel, item.dataset.destinationId);
        });
        // A click on a pushed notification while this page is open: the service worker asks for the chart.
        if ('serviceWorker' in navigator) {
            listen(navigator.serviceWorker, 'message', (event) => {
                const msg = event.data;
                if (msg && msg.type === 'legend.open-chart') this._openRequested(parseTicker(msg.ticker));
            });
            navigator.serviceWorker.startMessages();
        }
        listen(d.conn, 'click', () => {
            if (this.ws.state !== 'open' && !this.signin.signedOut) this.ws.connect(); // "retry now"
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
    }

    /**
     * Show a live row for `ticker` and subscribe to its prices (not saved to the watchlist). Returns
     * the ticker, or null if invalid.
     * @param {unknown} ticker
     */
    subscribeTicker(ticker) {
        return this.watchlist.subscribe(ticker);
    }

    /**
     * Remove the row of `ticker` and unsubscribe from its prices; returns whether there was a row.
     * @param {unknown} ticker
     */
    unsubscribeTicker(ticker) {
        return this.watchlist.unsubscribe(ticker);
    }

    /** Load the watchlist (server first, this browser when the API is missing) and follow it. */
    loadWatchlist() {
        return this.watchlist.load();
    }

    /**
     * Add to the watchlist (what the "Add" form does): the row appears at once; the server is told
     * (or this browser remembers). Resolves to {ok, ticker}.
     * @param {unknown} ticker
     */
    addToWatchlist(ticker) {
        return this.watchlist.add(ticker);
    }

    /**
     * Remove from the watchlist (and unsubscribe). Resolves to {ok}.
     * @param {unknown} ticker
     */
    removeFromWatchlist(ticker) {
        return this.watchlist.remove(ticker);
    }

    /** Past alert triggers (GET /api/alerts/events) into the Activity list: "while you were away". */
    loadAlertEvents() {
        return this.alerts.loadEvents();
    }

    /**
     * Use a pasted token (what the sign-in form does, JWT mode): checked with the server first, then
     * kept and the page reloads signed in. Resolves to {ok, error}.
     * @param {unknown} token
     */
    signIn(token) {
        return this.signin.signIn(token);
    }

    /** Forget the token and show the sign-in panel. */
    signOut() {
        this.signin.signOut();
    }

    /**
     * Show or hide the statistics panel (ws.getStats(), refreshed every second); returns whether it is now shown.
     * @param {boolean} [force]
     */
    toggleStats(force) {
        return this.statsPanel.toggle(force);
    }

    /** Read the user's alert rules again (GET /api/alerts/rules). */
    loadRules() {
        return this.alertRules.load();
    }

    /**
     * Create an alert rule from the form's values ({ticker, kind, threshold, session, rearm, …}; by default
     * of the regular session, firing again after the price crosses back). Resolves to {ok, rule, error}.
     * @param {Record<string, unknown>} input
     */
    createAlertRule(input) {
        return this.alertRules.create(input);
    }

    /**
     * Edit a rule in the form (what its Edit button does).
     * @param {unknown} id
     */
    editAlertRule(id) {
        return this.alertRules.edit(id);
    }

    /**
     * Pause a rule (what its Pause button does).
     * @param {unknown} id
     */
    pauseAlertRule(id) {
        return this.alertRules.setArmed(id, false);
    }

    /**
     * Resume a paused rule, or re-arm one that fired once (its Resume / Re-arm button).
     * @param {unknown} id
     */
    resumeAlertRule(id) {
        return this.alertRules.setArmed(id, true);
    }

    /**
     * Where the rule the form describes (or `input`) would have fired over the last days, marked on its
     * ticker's chart (what the Preview button does). Resolves to {ok, fires}.
     * @param {Record<string, string>} [input]
     */
    previewAlertRule(input) {
        return this.alertRules.preview(input);
    }

    /**
     * Mark a preview's fires on `ticker`'s chart (a live row is shown for a ticker not on the page).
     * @param {string} ticker
     * @param {import('../price-chart.js').ChartMarker[]} marks
     */
    async _showMarks(ticker, marks) {
        if (!marks.length) return false;
        if (!this.watchlist.row(ticker)) this.watchlist.subscribe(ticker);
        return this.charts.showMarkers(ticker, marks, marks.length === 1 ? 'preview alert' : 'preview alerts');
    }

    /**
     * Delete an alert rule by its id.
     * @param {unknown} id
     */
    deleteAlertRule(id) {
        return this.alertRules.remove(id);
    }

    /**
     * Open the price chart of `ticker` (a row on the page), then follow it live. Resolves once drawn;
     * to false when it cannot be.
     * @param {unknown} ticker
     */
    openChart(ticker) {
        return this.charts.open(ticker);
    }

    /** Close the price chart. */
    closeChart() {
        this.charts.close();
    }

    /**
     * Draw the chart as 'line' or 'candles' (remembered in this browser); returns the kind now used.
     * @param {unknown} kind
     */
    setChartKind(kind) {
        return this.charts.setKind(kind);
    }

    /**
     * Show the chart's bars of `interval` ('1m', '5m', '15m', '1h' or '1d', remembered in this browser);
     * resolves to the interval now used once the open chart is drawn again.
     * @param {unknown} interval
     */
    setChartInterval(interval) {
        return this.charts.setInterval(interval);
    }

    /**
     * Turn sound alerts on or off (what the sound button does); returns whether they are on.
     * @param {unknown} on
     */
    setSoundEnabled(on) {
        return this.sound.setEnabled(on);
    }

    /**
     * Turn voice alerts on or off (what the voice button does); returns whether they are on.
     * @param {unknown} on
     */
    setVoiceEnabled(on) {
        return this.voice.setEnabled(on);
    }

    /**
     * Turn Web Push on for this browser (asks for permission, then subscribes) or off (what the push
     * button does). Resolves to {ok, error}.
     * @param {unknown} on
     */
    setPushEnabled(on) {
        return this.notifications.setPush(on);
    }

    /**
     * Open the chart a notification's click asked for (a live row is shown for a ticker not on the page).
     * @param {string | null} ticker
     */
    _openRequested(ticker) {
        if (!ticker || this.destroyed) return Promise.resolve(false);
        this.requestedChart = null;
        const params = new URLSearchParams(window.location.search);
        if (params.has('chart')) {
            params.delete('chart'); // a reload does not open it again
            const query = params.toString();
            window.history.replaceState(null, '', window.location.pathname + (query ? '?' + query : ''));
        }
        if (!this.watchlist.row(ticker)) this.watchlist.subscribe(ticker);
        return this.openChart(ticker);
    }

    /**
     * A page of `ticker`'s bars (GET /api/bars/{ticker}): the newest, or those before `before`.
     * @type {import('./charts.js').LoadBars}
     */
    async _loadBars(ticker, interval, before) {
        const query = new URLSearchParams({ interval: interval, limit: String(BARS_PAGE) });
        if (before) query.set('before', before);
        const res = await this.api.get('/api/bars/' + encodeURIComponent(ticker) + '?' + query.toString());
        if (res.ok) return res.data;
        if (res.status === 404) throw new Error('HTTP 404');
        throw new Error(errorText(res, 'the bars could not be loaded'));
    }

    /**
     * Follow `ticker`'s live bar of `interval` on the bars channel; null while the client has none.
     * @type {import('./charts.js').SubscribeBars}
     */
    _subscribeBars(ticker, interval, onBar) {
        const client = this.ws;
        const off = client.onBar((msg) => {
            if (msg && msg.ticker === ticker && msg.interval === interval) onBar(msg);
        });
        client.subscribeBars(ticker, interval);
        return () => {
            off();
            client.unsubscribeBars(ticker, interval);
        };
    }

    /** Listen to `type` on `target` until the page goes (destroy()). */
    _listen(target, type, fn) {
        target.addEventListener(type, fn, { signal: this._signal });
    }

    _retrySoon() {
        if (!this.destroyed && this.ws.state === 'reconnecting') this.ws.connect();
        this.status.render(this.ws.state);
    }

    _markSeen() {
        if (this.ws.state === 'open') storage.set(KEYS.lastSeen(this.userId), String(Date.now()));
    }

    _onReconnecting(e) {
        // The server could not be asked at start: ask again, it may need a token.
        if (this.signin.mode === 'unknown' && e.attempt === 1) this.signin.loadConfig();
        this.status.showRetry(e);
    }

    _onClose(e) {
        if (e && e.code === 4401 && this.signin.mode !== 'dev') {
            this.signin.refused(e.reason);
        } else if (e && (e.code === 4401 || e.code === 4403)) {
            this.status.showBanner('The server refused this session (' + (e.reason || e.code) + '). Reload the page to try again.');
        }
    }

    _onOpen(e) {
        this.status.showBanner(null);
        this._markSeen();
        if (e && e.reconnected) {
            // The server may have restarted or the list changed elsewhere: follow it again.
            if (this.watchlist.mode !== 'local') this.loadWatchlist();
            if (this.alertRules.available !== true) this.loadRules();
        }
    }

    /**
     * @param {any} msg an `error`
     * @param {import('../client/types.js').MessageInfo} [info] names the subscription it refused, if it did
     */
    _onServerError(msg, info) {
        const refused = info && info.subscription ? info.subscription.channel : null;
        if (refused === 'patterns') {
            this.patternSettings.showError('Pattern alerts are off: ' + msg.message + '. Change the settings to try again.');
        } else if (refused === 'watchlist') {
            // a server without the watchlist channel: this tab just does not follow the others
        } else if (msg && (msg.code === 'subscription_limit' || msg.code === 'invalid_subscription')) {
            this._showError(this.dom.watchError, msg.message);
        }
    }

    /**
     * The pattern settings changed: the `patterns` subscription's filter is replaced (its history comes
     * again, filtered) and the Activity list lets go of the detections that no longer pass.
     */
    _applyPatternSettings() {
        const prefs = this.patternSettings.prefs;
        this.ws.setFilter('patterns', this.patternSettings.filter());
        this.activity.removePatterns((msg) => matchesPrefs(prefs, msg, (ticker) => this.watchlist.saved.has(ticker)));
    }

    _renderUser(userId) {
        if (!userId) return;
        const chip = this.dom.user;
        this.writer.write(chip.querySelector('.user-name'), userId);
        this.writer.write(chip.querySelector('.avatar'), String(userId).slice(0, 1).toUpperCase());
    }

    /**
     * The server named the signed-in user: take that id when it is a valid one (and this user's last
     * visit); returns the id the page now shows.
     * @param {string} userId
     */
    _signedInAs(userId) {
        if (USER_ID_RE.test(userId) && userId !== this.userId) {
            this.userId = userId;
            this.lastSeen = Number(storage.get(KEYS.lastSeen(userId))) || null;
            this.patternSettings.load(); // this user's
            this._applyPatternSettings();
        }
        this._renderUser(this.userId);
        return this.userId;
    }

    /** Signed out: close the socket and what shows the stream (chart, statistics, banner). */
    _stopStreaming() {
        if (this.ws.state !== 'closed') this.ws.disconnect(1000, 'signed out');
        this.closeChart();
        this.toggleStats(false);
        this.status.showBanner(null);
        this.status.render('closed');
    }

    /**
     * Show (null: hide) a form's error message.
     * @param {any} node
     * @param {string | null} text
     */
    _showError(node, text) {
        this.frame.set(node, () => {
            node.hidden = !text;
            node.textContent = text || '';
        });
    }
}
