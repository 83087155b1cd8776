/**
 * Legend Realtime — dashboard: a thin view layer on top of WebSocketClient (websocket-client.js).
 *
 * Starts by itself when the page loads and is reachable as `window.realtimeDashboard`:
 *
 *   realtimeDashboard.subscribeTicker('TSLA');     // show a live row for TSLA (not saved to the watchlist)
 *   realtimeDashboard.unsubscribeTicker('TSLA');
 *   realtimeDashboard.toggleStats();               // show/hide the panel with ws.getStats()
 *   realtimeDashboard.ws.getStats();               // the WebSocketClient itself
 *   realtimeDashboard.addToWatchlist('AMD');       // what the "Add" form does (REST, then subscribe)
 *   realtimeDashboard.setSoundEnabled(true);       // what the sound button does
 *   realtimeDashboard.openChart('AAPL');           // what clicking a ticker does (price chart, then live)
 *   realtimeDashboard.signIn(token);               // what the sign-in form does (JWT mode)
 *   realtimeDashboard.destroy();                   // handlers, timers and listeners removed; socket closed
 *
 * Identity: the page first asks GET /api/auth/config which mode the server is in.
 * - dev: the user id comes from `?user_id=` (remembered in localStorage), else localStorage, else 'demo';
 *   the socket sends it as `?user_id=`, REST calls as `X-User-Id`.
 * - jwt: the token in localStorage['legend.token'] (put there by the sign-in form, or by a login service
 *   that sends the user back to /dashboard#token=<JWT>) is checked with GET /api/auth/me; the socket sends
 *   it as the ['bearer', token] subprotocols, REST as `Authorization: Bearer`. Without a token the page
 *   shows the sign-in panel instead of connecting; a close 4401 (the token expired or was refused) or a
 *   REST 401 brings the panel back with the reason.
 *
 * Times: market open/close times are shown in the exchange's time zone with its name ("opens 9:30 AM
 * ET"), the local time on hover; charts read in exchange time too (price-chart.js).
 *
 * The watchlist lives on the server (GET/POST/DELETE /api/watchlist). When that API answers 404 (not
 * deployed) the list is kept in localStorage instead, and a note says so.
 *
 * Rendering: text goes through ws.updateElementIfChanged() (change-detected, applied once per frame);
 * classes, attributes and charts go through one keyed requestAnimationFrame batch (FrameBatch). Everything
 * the page keeps is bounded: chart points per ticker, toasts, activity items.
 */
(function () {
    'use strict';

    // ───────────────────────────── constants ─────────────────────────────

    const TICKER_RE = /^\^?[A-Z][A-Z0-9]*(?:[.-][A-Z0-9]+)*$/; // the server's rule (legend/domain/symbols.py)
    const MAX_TICKER_LENGTH = 12;
    const USER_ID_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
    const DEFAULT_USER = 'demo';
    const DEFAULT_TICKERS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'SPY'];
    const QUICK_ADD = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'TSLA', 'SPY'];

    const CHART_POINTS = 90; // per ticker
    const MAX_TOASTS = 4;
    const TOAST_MS = 8000;
    const MAX_FEED = 50;
    const MAX_PATTERN_CHIPS = 200;
    const STATS_REFRESH_MS = 1000;
    const EVENTS_LIMIT = 20;
    const SEEN_EVERY_MS = 15000; // how often "this user is here" is written down while live
    const RULES_REFRESH_MS = 1000; // rules are read again this long after a trigger (their counters moved)

    const CHART_TICKS = 5000; // prices kept per ticker for its chart (one per second at most)
    const CHART_RESTART_MS = 3600000; // a price this much older than the newest: the series started again

    const KEYS = {
        userId: 'legend.userId',
        token: 'legend.token',
        sound: 'legend.sound',
        chartKind: 'legend.chartKind',
        watchlist: (user) => 'legend.watchlist.' + user,
        lastSeen: (user) => 'legend.lastSeen.' + user,
    };

    const ALERT_KINDS = [
        ['price_above', 'Price above'],
        ['price_below', 'Price below'],
        ['breakout', 'Breakout above'],
        ['breakdown', 'Breakdown below'],
        ['change_percent_above', 'Change % above'],
        ['change_percent_below', 'Change % below'],
        ['volume_above', 'Volume above'],
    ];
    const KIND_LABEL = new Map(ALERT_KINDS);

    const MARKET_LABEL = {
        open: 'Market open',
        closed: 'Market closed',
        pre_market: 'Pre-market',
        after_hours: 'After hours',
        halted: 'Trading halted',
    };

    const CONNECTION_LABEL = {
        open: 'Live',
        degraded: 'Live (degraded: updates may be delayed)',
        connecting: 'Connecting…',
        reconnecting: 'Reconnecting…',
        closed: 'Offline',
        'signed-out': 'Signed out',
    };

    // The time zone of each exchange calendar (market.calendar; the market_status message's `exchange`).
    // An exchange not listed here is shown in the browser's own time, with its zone named.
    const EXCHANGE_ZONES = {
        XNYS: 'America/New_York', XNAS: 'America/New_York', XASE: 'America/New_York', ARCX: 'America/New_York',
        BATS: 'America/New_York', IEPA: 'America/New_York', XCBF: 'America/Chicago', CMES: 'America/Chicago',
        XTSE: 'America/Toronto', XMEX: 'America/Mexico_City', BVMF: 'America/Sao_Paulo',
        XLON: 'Europe/London', XDUB: 'Europe/Dublin', XPAR: 'Europe/Paris', XAMS: 'Europe/Amsterdam',
        XBRU: 'Europe/Brussels', XETR: 'Europe/Berlin', XFRA: 'Europe/Berlin', XSWX: 'Europe/Zurich',
        XMIL: 'Europe/Rome', XMAD: 'Europe/Madrid', XSTO: 'Europe/Stockholm', XOSL: 'Europe/Oslo',
        XCSE: 'Europe/Copenhagen', XHEL: 'Europe/Helsinki', XWBO: 'Europe/Vienna', XLIS: 'Europe/Lisbon',
        XJSE: 'Africa/Johannesburg', XTAE: 'Asia/Jerusalem', XBOM: 'Asia/Kolkata', XNSE: 'Asia/Kolkata',
        XSHG: 'Asia/Shanghai', XSHE: 'Asia/Shanghai', XHKG: 'Asia/Hong_Kong', XTAI: 'Asia/Taipei',
        XKRX: 'Asia/Seoul', XTKS: 'Asia/Tokyo', XSES: 'Asia/Singapore', XKLS: 'Asia/Kuala_Lumpur',
        XIDX: 'Asia/Jakarta', XBKK: 'Asia/Bangkok', XPHS: 'Asia/Manila', XASX: 'Australia/Sydney',
        XNZE: 'Pacific/Auckland',
    };
    const DEFAULT_EXCHANGE = 'XNYS'; // market.calendar's default, until the first market_status says

    // ───────────────────────────── small helpers ─────────────────────────────

    const storage = {
        get(key) {
            try {
                return window.localStorage.getItem(key);
            } catch (_) {
                return null; // storage disabled (privacy mode): the page still works
            }
        },
        set(key, value) {
            try {
                if (value === null || value === undefined) window.localStorage.removeItem(key);
                else window.localStorage.setItem(key, value);
            } catch (_) {
                /* quota or privacy mode */
            }
        },
    };

    /** An upper-cased ticker, or null when it is not a valid symbol. */
    function parseTicker(raw) {
        const typed = String(raw === null || raw === undefined ? '' : raw).trim();
        if (!/^[\x20-\x7e]*$/.test(typed)) return null; // ASCII before any case change ('ß' is not 'SS')
        const t = typed.toUpperCase();
        return t.length > 0 && t.length <= MAX_TICKER_LENGTH && TICKER_RE.test(t) ? t : null;
    }

    function num(value) {
        const n = typeof value === 'number' ? value : Number(value);
        return Number.isFinite(n) ? n : null;
    }

    /**
     * Keep a price for the chart in `row.times`/`row.prices` (ascending; the newest price of a second
     * replaces the one before it), at most CHART_TICKS. Returns 'append', 'replace' (same second as the
     * last), 'insert' (older than the last: the chart must be redrawn), 'reset' (far older: the series
     * started again, as a replay that loops; the kept prices were dropped) or null (nothing kept).
     */
    function recordPrice(row, ms, price) {
        const times = row.times;
        const prices = row.prices;
        const n = times.length;
        const second = Math.floor(ms / 1000);
        let result = 'append';
        if (n && Math.floor(times[n - 1] / 1000) === second) {
            times[n - 1] = ms;
            prices[n - 1] = price;
            return 'replace';
        }
        if (n && ms < times[n - 1] - CHART_RESTART_MS) {
            times.length = 0;
            prices.length = 0;
            times.push(ms);
            prices.push(price);
            return 'reset';
        }
        if (n && ms < times[n - 1]) {
            let lo = 0;
            let hi = n;
            while (lo < hi) {
                const mid = (lo + hi) >> 1;
                if (times[mid] <= ms) lo = mid + 1;
                else hi = mid;
            }
            if (lo > 0 && Math.floor(times[lo - 1] / 1000) === second) return null; // that second is known
            times.splice(lo, 0, ms);
            prices.splice(lo, 0, price);
            result = 'insert';
        } else {
            times.push(ms);
            prices.push(price);
        }
        if (times.length > CHART_TICKS + 500) { // trim in steps, not on every price
            times.splice(0, times.length - CHART_TICKS);
            prices.splice(0, prices.length - CHART_TICKS);
            if (result === 'append') result = 'trim';
        }
        return result;
    }

    const formats = new Map();
    function numberFormat(options) {
        const key = JSON.stringify(options);
        let f = formats.get(key);
        if (!f) {
            f = new Intl.NumberFormat(undefined, options);
            formats.set(key, f);
        }
        return f;
    }

    function fmtPrice(value) {
        const v = num(value);
        if (v === null) return '—';
        const digits = Math.abs(v) >= 1 || v === 0 ? 2 : 4;
        return numberFormat({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
    }

    function signed(v, text) {
        return (v > 0 ? '+' : v < 0 ? '−' : '') + text;
    }

    function fmtChange(value) {
        const v = num(value);
        if (v === null) return '—';
        const digits = v !== 0 && Math.abs(v) < 0.01 ? 4 : 2;
        return signed(v, numberFormat({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(Math.abs(v)));
    }

    function fmtPercent(value) {
        const v = num(value);
        if (v === null) return '—';
        return signed(v, numberFormat({ minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(Math.abs(v)) + '%');
    }

    function fmtVolume(value) {
        const v = num(value);
        return v === null ? '—' : numberFormat({ notation: 'compact', maximumFractionDigits: 1 }).format(v);
    }

    function fmtMoney(value) {
        return '$' + fmtPrice(value);
    }

    function fmtThreshold(kind, value) {
        if (String(kind).startsWith('change_percent')) return fmtPercent(value).replace(/^\+/, '');
        if (kind === 'volume_above') return fmtVolume(value);
        return fmtMoney(value);
    }

    function parseTime(value) {
        if (!value) return null;
        const d = new Date(value);
        return Number.isNaN(d.getTime()) ? null : d;
    }

    const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
    const fullFormat = new Intl.DateTimeFormat(undefined, {
        weekday: 'long', year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short',
    });

    function fmtClock(date) {
        return date ? timeFormat.format(date) : '';
    }

    // ───────────── exchange time ─────────────

    /** The IANA time zone of an exchange calendar code, or null when it is not known here. */
    function exchangeZone(exchange) {
        return Object.prototype.hasOwnProperty.call(EXCHANGE_ZONES, exchange) ? EXCHANGE_ZONES[exchange] : null;
    }

    const zoneFormats = new Map();
    /** A cached Intl.DateTimeFormat in `zone` (null: the browser's own zone). */
    function zoneFormat(zone, options) {
        const key = (zone || '') + JSON.stringify(options);
        let f = zoneFormats.get(key);
        if (!f) {
            f = new Intl.DateTimeFormat(options.locale, Object.assign({}, options, { locale: undefined, timeZone: zone || undefined }));
            zoneFormats.set(key, f);
        }
        return f;
    }

    function zonePart(zone, date, style) {
        const part = zoneFormat(zone, { timeZoneName: style }).formatToParts(date).find((p) => p.type === 'timeZoneName');
        return part ? part.value : '';
    }

    /** The zone's short name at `date`: "ET" for New York (generic), else "GMT", "GMT+9", "CET"… */
    function zoneName(zone, date) {
        const generic = zonePart(zone, date, 'shortGeneric');
        if (generic && generic.length <= 4 && !/^GMT|^UTC/.test(generic)) return generic;
        return zonePart(zone, date, 'short');
    }

    /** Calendar day of `date` in `zone` (YYYY-MM-DD). */
    function zoneDay(zone, date) {
        const p = {};
        for (const part of zoneFormat(zone, { year: 'numeric', month: '2-digit', day: '2-digit', locale: 'en-US' }).formatToParts(date)) p[part.type] = part.value;
        return p.year + '-' + p.month + '-' + p.day;
    }

    /**
     * An exchange time for the market badge, with the zone named: "9:30 AM ET" on the exchange's
     * current day, "Tue 9:30 AM ET" within a week, "Nov 27, 9:30 AM ET" further away.
     */
    function fmtMarketTime(date, zone, now) {
        if (!date) return '';
        const at = now || new Date();
        const time = zoneFormat(zone, { hour: 'numeric', minute: '2-digit' }).format(date) + ' ' + zoneName(zone, date);
        if (zoneDay(zone, date) === zoneDay(zone, at)) return time;
        if (Math.abs(date.getTime() - at.getTime()) <= 6 * 86400000) {
            return zoneFormat(zone, { weekday: 'short' }).format(date) + ' ' + time;
        }
        return zoneFormat(zone, { month: 'short', day: 'numeric' }).format(date) + ', ' + time;
    }

    /** The long form for a tooltip: "Tuesday, Dec 2, 9:30 AM EST". */
    function fmtMarketTimeLong(date, zone) {
        return zoneFormat(zone, { weekday: 'long', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).format(date);
    }

    // ───────────── tokens ─────────────

    function base64UrlDecode(text) {
        const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
        const binary = window.atob(b64);
        const bytes = new Uint8Array(binary.length);
        for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
        return new window.TextDecoder().decode(bytes);
    }

    /**
     * The claims of a JWT, read without checking its signature (only the server can): enough to tell a
     * pasted token from something else and to show when it expires. Null when it is not a JWT.
     */
    function decodeToken(token) {
        const parts = String(token === null || token === undefined ? '' : token).trim().split('.');
        if (parts.length !== 3 || !parts[0] || !parts[1] || !parts.every((p) => /^[A-Za-z0-9_-]*$/.test(p))) return null;
        try {
            const header = JSON.parse(base64UrlDecode(parts[0]));
            const claims = JSON.parse(base64UrlDecode(parts[1]));
            if (!header || typeof header !== 'object' || !claims || typeof claims !== 'object' || Array.isArray(claims)) return null;
            return claims;
        } catch (_) {
            return null;
        }
    }

    /** A token handed over in the page address by a login service: /dashboard#token=<JWT>. */
    function tokenFromHash(hash) {
        const text = String(hash || '').replace(/^#/, '');
        if (!text) return null;
        const token = new URLSearchParams(text).get('token');
        return token && decodeToken(token) ? token : null;
    }

    /** `url` when it is a web address or a path on this server (never javascript: or data:), else null. */
    function safeLink(url, base) {
        if (typeof url !== 'string' || !url) return null;
        try {
            const parsed = new URL(url, base);
            return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
        } catch (_) {
            return null;
        }
    }

    /** The most useful line of a REST error answer (Litestar: {detail, extra: [{message}]}). */
    function errorText(res, fallback) {
        const data = res && res.data;
        if (data && typeof data === 'object') {
            if (Array.isArray(data.extra) && data.extra.length && data.extra[0] && data.extra[0].message) {
                return String(data.extra[0].message);
            }
            if (data.detail) return String(data.detail);
        }
        if (res && res.status === 0) return fallback + ': the server cannot be reached';
        return fallback + (res && res.status ? ' (HTTP ' + res.status + ')' : '');
    }

    function el(tag, className, text) {
        const node = document.createElement(tag);
        if (className) node.className = className;
        if (text !== undefined && text !== null) node.textContent = text;
        return node;
    }

    /**
     * DOM work other than text (classes, attributes, charts), applied together in one animation frame.
     * Work is keyed: scheduling the same key again before the frame replaces the earlier work.
     */
    class FrameBatch {
        constructor() {
            this._work = new Map();
            this._frame = null;
        }

        set(key, fn) {
            this._work.delete(key); // keep insertion order = order of the latest request
            this._work.set(key, fn);
            if (this._frame === null) this._frame = window.requestAnimationFrame(() => this._run());
        }

        delete(key) {
            this._work.delete(key);
        }

        _run() {
            this._frame = null;
            const work = this._work;
            this._work = new Map();
            for (const fn of work.values()) {
                try {
                    fn();
                } catch (err) {
                    console.warn('realtime-dashboard: render failed', err);
                }
            }
        }

        clear() {
            if (this._frame !== null) window.cancelAnimationFrame(this._frame);
            this._frame = null;
            this._work.clear();
        }
    }

    // ───────────────────────────── REST ─────────────────────────────

    class Api {
        /** `onUnauthorized(res)` is called for every 401 answer, except to requests made with `quiet`. */
        constructor(userId, tokenFn, signal, onUnauthorized) {
            this.userId = userId;
            this.tokenFn = tokenFn;
            this.signal = signal;
            this.onUnauthorized = onUnauthorized || null;
        }

        /**
         * Resolves to {ok, status, data}; status 0 when the server cannot be reached. Never rejects.
         * `options.token` sends that token instead of the stored one; `options.quiet` skips onUnauthorized.
         */
        async request(method, path, body, options) {
            const opts = options || {};
            const headers = { Accept: 'application/json' };
            const token = opts.token || this.tokenFn();
            if (token) headers.Authorization = 'Bearer ' + token;
            else headers['X-User-Id'] = this.userId;
            if (body !== undefined) headers['Content-Type'] = 'application/json';
            let res;
            try {
                res = await fetch(path, {
                    method: method,
                    headers: headers,
                    body: body === undefined ? undefined : JSON.stringify(body),
                    cache: 'no-store',
                    credentials: 'same-origin',
                    keepalive: method !== 'GET', // a change made just before leaving the page still lands
                    signal: this.signal,
                });
            } catch (_) {
                return { ok: false, status: 0, data: null };
            }
            let data = null;
            try {
                const text = await res.text();
                data = text ? JSON.parse(text) : null;
            } catch (_) {
                data = null;
            }
            const result = { ok: res.ok, status: res.status, data: data };
            if (res.status === 401 && !opts.quiet && this.onUnauthorized) this.onUnauthorized(result);
            return result;
        }

        get(path, options) {
            return this.request('GET', path, undefined, options);
        }

        post(path, body) {
            return this.request('POST', path, body);
        }

        del(path) {
            return this.request('DELETE', path);
        }
    }

    // ───────────────────────────── sound ─────────────────────────────

    /** Short WebAudio beeps; the AudioContext is only created after a user gesture. */
    class Beeper {
        constructor() {
            this.ctx = null;
        }

        /** Create or wake the audio context (call from a user gesture). */
        unlock() {
            const Ctx = window.AudioContext || window.webkitAudioContext;
            if (!Ctx) return false;
            try {
                if (!this.ctx) this.ctx = new Ctx();
                if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
                return true;
            } catch (_) {
                return false;
            }
        }

        /** Two rising tones (an alert), or one soft tone (`confirm`). */
        play(kind) {
            const ctx = this.ctx;
            if (!ctx || ctx.state === 'closed') return;
            const tones = kind === 'confirm' ? [[660, 0]] : [[880, 0], [1175, 0.16]];
            const start = ctx.currentTime + 0.01;
            for (const [freq, offset] of tones) {
                const osc = ctx.createOscillator();
                const gain = ctx.createGain();
                osc.type = 'sine';
                osc.frequency.value = freq;
                const t0 = start + offset;
                gain.gain.setValueAtTime(0.0001, t0);
                gain.gain.exponentialRampToValueAtTime(0.18, t0 + 0.015);
                gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.14);
                osc.connect(gain).connect(ctx.destination);
                osc.start(t0);
                osc.stop(t0 + 0.15);
            }
        }

        close() {
            if (this.ctx && this.ctx.state !== 'closed') this.ctx.close().catch(() => {});
            this.ctx = null;
        }
    }

    // ───────────────────────────── the dashboard ─────────────────────────────

    class RealtimeDashboard {
        constructor(options) {
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

            this._aborter = new AbortController();
            this._signal = this._aborter.signal;
            this.api = new Api(userId, tokenFn, this._signal, (res) => this._onUnauthorized(res));
            this.frame = new FrameBatch();
            this.beeper = new Beeper();
            // ?user_id= serves development mode; with a token (JWT mode) the server ignores it.
            this.ws = new window.WebSocketClient(Object.assign({ userId: userId, token: tokenFn }, opts.client || {}));
            this.exchange = DEFAULT_EXCHANGE;
            this.chart = null; // PriceChart, created when a chart is first opened
            this.chartTicker = null; // the ticker whose chart is open
            this.chartKind = storage.get(KEYS.chartKind) === 'candles' ? 'candles' : 'line';

            this.rows = new Map(); // ticker -> row state; the only place rows come from
            this.patterns = new Map(); // ticker -> latest pattern chip, at most MAX_PATTERN_CHIPS
            this.watchlist = new Set(); // tickers saved in the user's watchlist
            this.watchlistMode = 'loading'; // 'server' | 'local' | 'degraded'
            this.rulesAvailable = null; // null: not known yet
            this.rules = new Map(); // id -> rule
            this.feed = []; // [{key, time, node}], newest first, at most MAX_FEED
            this.toasts = new Set();
            this.timers = new Set();
            this.statsTimer = null;
            this.statsCells = null;
            this.soundEnabled = storage.get(KEYS.sound) === 'on';
            // When this user last had the page live here: missed triggers newer than that are "while away".
            this.lastSeen = Number(storage.get(KEYS.lastSeen(userId))) || null;
            this.seenTimer = null;
            this.rulesTimer = null;
            this.destroyed = false;
            this._offs = [];

            this._bindDom();
            this._bindClient();
        }

        // ───────────── lifecycle ─────────────

        start() {
            this._renderConnection(this.ws.state === 'closed' ? 'connecting' : this.ws.state);
            this._renderSound();
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
        }

        /** Remove every handler, timer and listener, close the socket and the audio context. */
        destroy() {
            if (this.destroyed) return;
            this.destroyed = true;
            for (const off of this._offs) off();
            this._offs = [];
            this._aborter.abort(); // DOM listeners and pending fetches
            this.ws.destroy();
            this.frame.clear();
            for (const id of this.timers) window.clearTimeout(id);
            this.timers.clear();
            if (this.statsTimer !== null) window.clearInterval(this.statsTimer);
            this.statsTimer = null;
            window.clearInterval(this.seenTimer);
            this.seenTimer = null;
            this.beeper.close();
            if (this.chart) this.chart.destroy();
            this.chart = null;
        }

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
            on('statechange', (e) => this._renderConnection(e.state));
            on('reconnecting', this._onReconnecting);
            on('close', this._onClose);
            on('open', this._onOpen);
            on('price_update', this._onPrice);
            on('pattern_alert', this._onPattern);
            on('alert_trigger', this._onAlertTrigger);
            on('market_status', this._onMarketStatus);
            on('error', this._onServerError);
            on('service_status', this._onServiceStatus);
            on('connection', (msg) => this._renderUser(msg.user_id));
        }

        _bindDom() {
            const $ = (id) => document.getElementById(id);
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
            listen(d.chartDialog, 'close', () => this._chartClosed());
            listen(d.chartDialog, 'click', (event) => {
                if (event.target === d.chartDialog) this.closeChart(); // the backdrop
                const kind = event.target.closest('button[data-kind]');
                if (kind) this.setChartKind(kind.dataset.kind);
            });
            if (window.matchMedia) {
                listen(window.matchMedia('(prefers-color-scheme: dark)'), 'change', () => {
                    if (this.chart) this.chart.setColors(this._chartColors());
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
                this._submitRule();
            });
            listen(d.ruleList, 'click', (event) => {
                const button = event.target.closest('button[data-rule-id]');
                if (button) this.deleteAlertRule(button.dataset.ruleId);
            });
            listen(d.statsToggle, 'click', () => this.toggleStats());
            listen(d.statsClose, 'click', () => this.toggleStats(false));
            listen(d.sound, 'click', () => this.setSoundEnabled(!this.soundEnabled));
            listen(d.conn, 'click', () => {
                if (this.ws.state !== 'open' && !this.signedOut) this.ws.connect(); // "retry now"
            });
            listen(d.toasts, 'click', (event) => {
                const toast = event.target.closest('.toast');
                if (toast) this._dismissToast(toast);
            });
            // Recover at once when the network or the tab comes back, instead of waiting for the backoff.
            listen(window, 'online', () => this._retrySoon());
            listen(window, 'offline', () => this._renderConnection(this.ws.state));
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
            const unlock = () => {
                if (this.soundEnabled) this.beeper.unlock();
            };
            listen(document, 'pointerdown', unlock);
            listen(document, 'keydown', unlock);
        }

        _retrySoon() {
            if (!this.destroyed && this.ws.state === 'reconnecting') this.ws.connect();
            this._renderConnection(this.ws.state);
        }

        // ───────────── connection ─────────────

        _renderConnection(state) {
            let shown = state;
            if (state !== 'open' && state !== 'closed' && navigator.onLine === false) shown = 'closed';
            // Connected, but the server says live delivery is degraded (its backplane is down).
            if (shown === 'open' && this.ws.serviceStatus === 'degraded') shown = 'degraded';
            if (this.signedOut) shown = 'signed-out';
            const label = CONNECTION_LABEL[shown] || CONNECTION_LABEL.connecting;
            const reason = this.serviceReason;
            this.ws.updateElementIfChanged(this.dom.connLabel, label);
            this.frame.set('conn', () => {
                this.dom.conn.dataset.state = shown;
                this.dom.conn.title = shown === 'open'
                    ? 'Streaming live'
                    : shown === 'degraded' ? reason || 'The server cannot stream live right now; your connection stays open'
                        : shown === 'signed-out' ? 'Sign in to stream'
                            : shown === 'closed' ? 'Offline: click to reconnect' : 'Reconnecting: click to retry now';
                this.dom.table.classList.toggle('is-stale', shown !== 'open');
            });
        }

        /** The server says live delivery degraded or recovered: show it in the connection indicator. */
        _onServiceStatus(msg) {
            this.serviceReason = msg && typeof msg.reason === 'string' ? msg.reason : null;
            this._renderConnection(this.ws.state);
        }

        _onReconnecting(e) {
            // The server could not be asked at start: ask again, it may need a token.
            if (this.authMode === 'unknown' && e.attempt === 1) this._loadAuthConfig();
            const seconds = (e.delay / 1000).toFixed(1);
            this.frame.set('conn-retry', () => {
                this.dom.conn.title = 'Reconnecting: attempt ' + e.attempt + ' in ' + seconds + ' s (click to retry now)';
            });
        }

        _onClose(e) {
            if (e && e.code === 4401 && this.authMode !== 'dev') {
                this._showSignIn(this._refusal(e.reason));
            } else if (e && (e.code === 4401 || e.code === 4403)) {
                this._showBanner('The server refused this session (' + (e.reason || e.code) + '). Reload the page to try again.');
            }
        }

        // ───────────── sign-in (JWT mode) ─────────────

        /** Learn the server's auth mode and login URL; false when the server could not say. */
        async _loadAuthConfig() {
            const res = await this.api.get('/api/auth/config', { quiet: true });
            if (this.destroyed || !res.ok || !res.data || (res.data.mode !== 'dev' && res.data.mode !== 'jwt')) return false;
            this.authMode = res.data.mode;
            this.loginUrl = safeLink(res.data.login_url, window.location.href);
            return true;
        }

        /**
         * Before connecting: in JWT mode, is there a token the server accepts? Resolves to true to go on
         * (signed in, development mode, or a server that cannot say: the socket will tell), false when
         * the sign-in panel is shown instead.
         */
        async _checkAuth() {
            await this._loadAuthConfig();
            if (this.destroyed) return false;
            if (this.authMode === 'dev') return true;
            const token = storage.get(KEYS.token);
            if (!token) {
                if (this.authMode !== 'jwt') return true;
                this._showSignIn(null);
                return false;
            }
            const me = await this.api.get('/api/auth/me', { quiet: true });
            if (this.destroyed) return false;
            if (me.ok && me.data && typeof me.data.user_id === 'string') {
                this._signedIn(me.data);
                return true;
            }
            if (me.status === 401) {
                this._showSignIn(this._refusal(me.data && me.data.detail, token));
                return false;
            }
            return true;
        }

        _signedIn(me) {
            if (USER_ID_RE.test(me.user_id) && me.user_id !== this.userId) {
                this.userId = me.user_id;
                this.lastSeen = Number(storage.get(KEYS.lastSeen(this.userId))) || null;
            }
            this.expiresAt = parseTime(me.expires_at);
            this._renderUser(this.userId);
            const until = this.expiresAt ? ' until ' + fullFormat.format(this.expiresAt) : '';
            this.frame.set('signed-in', () => {
                this.dom.user.title = 'Signed in as ' + this.userId + until;
                this.dom.signOut.hidden = false;
            });
        }

        /** What to tell the user when the server refused their token (`reason`: its words). */
        _refusal(reason, token) {
            const text = String(reason || '').replace(/^authentication required: /, '');
            if (/token expired/.test(text)) {
                const claims = decodeToken(token || storage.get(KEYS.token));
                const exp = claims && typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : null;
                return 'Your session expired' + (exp ? ' at ' + fmtClock(exp) : '') + '. Sign in again to keep streaming.';
            }
            if (/missing token/.test(text)) return null;
            return 'The server refused your token (' + (text || 'not accepted') + '). Sign in again.';
        }

        /** A REST call answered 401: in JWT mode the token expired or was refused. */
        _onUnauthorized(res) {
            if (this.authMode === 'dev' || this.destroyed) return;
            this._showSignIn(this._refusal(res.data && res.data.detail));
        }

        /** Stop streaming and show the sign-in panel, with `message` (why) when there is one. */
        _showSignIn(message) {
            if (this.destroyed) return;
            const again = this.signedOut;
            this.signedOut = true;
            if (this.ws.state !== 'closed') this.ws.disconnect(1000, 'signed out');
            this.closeChart();
            this.toggleStats(false);
            this._showBanner(null);
            this._renderConnection('closed');
            const d = this.dom;
            if (!again || message) {
                this.frame.set('signin-message', () => {
                    d.signinMessage.hidden = !message;
                    d.signinMessage.textContent = message || '';
                });
            }
            this.frame.set('signin', () => {
                document.body.dataset.auth = 'signed-out';
                d.layout.hidden = true;
                d.signin.hidden = false;
                d.signOut.hidden = true;
                d.signinLogin.hidden = !this.loginUrl;
                if (this.loginUrl) d.signinLogin.href = this.loginUrl;
                if (!again) d.signinToken.focus();
            });
        }

        /**
         * Use a pasted token: checked with the server first (GET /api/auth/me), then kept in
         * localStorage and the page reloads signed in. Resolves to {ok, error}.
         */
        async signIn(raw) {
            const token = String(raw === null || raw === undefined ? '' : raw).trim().replace(/^Bearer\s+/i, '');
            const fail = (text) => {
                this._showError(this.dom.signinError, text);
                return { ok: false, error: text };
            };
            if (!token) return fail('Paste your access token first.');
            if (!decodeToken(token)) return fail('That is not an access token: a token is three parts separated by dots (eyJ….eyJ….…).');
            const res = await this.api.get('/api/auth/me', { token: token, quiet: true });
            if (this.destroyed) return { ok: false };
            if (res.status === 401) {
                const reason = String((res.data && res.data.detail) || '').replace(/^authentication required: /, '');
                if (/token expired/.test(reason)) {
                    const exp = decodeToken(token).exp;
                    return fail('This token expired' + (typeof exp === 'number' ? ' at ' + fullFormat.format(new Date(exp * 1000)) : '') + ': ask for a new one.');
                }
                return fail('The server refused this token: ' + (reason || 'not accepted') + '.');
            }
            if (!res.ok) return fail(errorText(res, 'Could not check the token'));
            storage.set(KEYS.token, token);
            this._showError(this.dom.signinError, null);
            this._reload();
            return { ok: true, user: res.data && res.data.user_id };
        }

        /** Forget the token and show the sign-in panel. */
        signOut() {
            storage.set(KEYS.token, null);
            this._showSignIn(null);
        }

        _reload() {
            window.location.reload();
        }

        _markSeen() {
            if (this.ws.state === 'open') storage.set(KEYS.lastSeen(this.userId), String(Date.now()));
        }

        _onOpen(e) {
            this._showBanner(null);
            this._markSeen();
            if (e && e.reconnected) {
                // The server may have restarted or the list changed elsewhere: follow it again.
                if (this.watchlistMode !== 'local') this.loadWatchlist();
                if (this.rulesAvailable !== true) this.loadRules();
            }
        }

        _onServerError(msg) {
            if (msg && (msg.code === 'subscription_limit' || msg.code === 'invalid_subscription')) {
                this._showError(this.dom.watchError, msg.message);
            }
        }

        _renderUser(userId) {
            if (!userId) return;
            const chip = this.dom.user;
            this.ws.updateElementIfChanged(chip.querySelector('.user-name'), userId);
            this.ws.updateElementIfChanged(chip.querySelector('.avatar'), String(userId).slice(0, 1).toUpperCase());
        }

        _showBanner(text) {
            this.frame.set('banner', () => {
                this.dom.banner.hidden = !text;
                this.dom.banner.textContent = text || '';
            });
        }

        // ───────────── tickers and rows ─────────────

        /** Show a live row for `ticker` and subscribe to its prices. Returns the ticker, or null if invalid. */
        subscribeTicker(raw) {
            const ticker = parseTicker(raw);
            if (!ticker || this.destroyed) return null;
            if (!this.rows.has(ticker)) {
                this.rows.set(ticker, this._createRow(ticker));
                this._paintChip(ticker);
                this._renderEmpty();
            }
            this.ws.subscribe('ticker', ticker);
            return ticker;
        }

        /** Remove the row of `ticker` and unsubscribe from its prices. */
        unsubscribeTicker(raw) {
            const ticker = parseTicker(raw);
            if (!ticker) return false;
            const row = this.rows.get(ticker);
            if (row) {
                if (this.chartTicker === ticker) this.closeChart();
                this.rows.delete(ticker);
                this.frame.delete(row);
                row.el.remove();
                this.ws.forgetElements(row.el); // its cells must not stay in the client's change cache
                this._renderEmpty();
            }
            this.ws.unsubscribe('ticker', ticker);
            return !!row;
        }

        _createRow(ticker) {
            const el = this.dom.rowTemplate.content.firstElementChild.cloneNode(true);
            el.dataset.ticker = ticker;
            const q = (sel) => el.querySelector(sel);
            q('.sym').textContent = ticker;
            q('.sym').title = 'Open the ' + ticker + ' chart';
            q('.remove').setAttribute('aria-label', 'Remove ' + ticker + ' from the watchlist');
            q('.remove').title = 'Remove ' + ticker;
            const row = {
                ticker: ticker,
                el: el,
                cells: {
                    price: q('.price'),
                    chg: q('.chg'),
                    pct: q('.pct'),
                    vol: q('.vol'),
                    lo: q('.lo'),
                    hi: q('.hi'),
                    priceCell: q('td.col-last'),
                    chip: q('.pattern-chip'),
                    mark: q('.range-mark'),
                    line: q('.spark-line'),
                    area: q('.spark-area'),
                    base: q('.spark-base'),
                },
                points: [],
                times: [], // epoch ms, ascending, one per second at most: the chart's prices
                prices: [],
                last: null,
                trend: 'flat',
                flash: null,
                flashParity: 0,
            };
            // Keep the table in watchlist order: new tickers go last.
            this.dom.rows.appendChild(el);
            return row;
        }

        _onPrice(msg, info) {
            const ticker = parseTicker(msg.ticker);
            const row = ticker && this.rows.get(ticker);
            const price = num(msg.price);
            if (!row || price === null) return;
            const previous = row.last;
            row.last = msg;
            row.points.push(price);
            if (row.points.length > CHART_POINTS) row.points.splice(0, row.points.length - CHART_POINTS);
            const at = parseTime(msg.timestamp);
            const recorded = recordPrice(row, at ? at.getTime() : Date.now(), price);

            const ws = this.ws;
            const c = row.cells;
            ws.updateElementIfChanged(c.price, price, fmtPrice);
            ws.updateElementIfChanged(c.chg, msg.change, fmtChange);
            ws.updateElementIfChanged(c.pct, msg.change_percent, fmtPercent);
            ws.updateElementIfChanged(c.vol, msg.volume, fmtVolume);
            ws.updateElementIfChanged(c.lo, msg.low, fmtPrice);
            ws.updateElementIfChanged(c.hi, msg.high, fmtPrice);

            const change = num(msg.change) || 0;
            row.trend = change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
            if (!info || !info.replayed) {
                const before = previous ? num(previous.price) : null;
                if (before !== null && before !== price) row.flash = price > before ? 'up' : 'down';
            }
            this.frame.set(row, () => this._paintRow(row));
            if (this.chartTicker === ticker) this._chartPrice(row, recorded);
        }

        /** Classes, chart and range marker of one row (runs inside the frame batch). */
        _paintRow(row) {
            if (!this.rows.has(row.ticker)) return;
            const c = row.cells;
            if (row.el.dataset.trend !== row.trend) row.el.dataset.trend = row.trend;
            if (row.flash) {
                row.flashParity ^= 1; // a new animation name restarts the animation without a reflow
                c.priceCell.dataset.flash = row.flash + row.flashParity;
                row.flash = null;
            }
            const last = row.last;
            const lo = num(last.low);
            const hi = num(last.high);
            const price = num(last.price);
            if (lo !== null && hi !== null && price !== null) {
                const at = hi > lo ? (price - lo) / (hi - lo) : 0.5;
                c.mark.style.left = (Math.min(1, Math.max(0, at)) * 100).toFixed(1) + '%';
            }
            this._paintChart(row);
        }

        _paintChart(row) {
            const points = row.points;
            const W = 120;
            const H = 32;
            const pad = 3;
            const base = num(row.last && row.last.previous_close);
            let min = Infinity;
            let max = -Infinity;
            for (const p of points) {
                if (p < min) min = p;
                if (p > max) max = p;
            }
            if (base !== null) {
                min = Math.min(min, base);
                max = Math.max(max, base);
            }
            const span = max - min;
            const y = (p) => (span > 0 ? H - pad - ((p - min) / span) * (H - 2 * pad) : H / 2);
            const n = points.length;
            const step = n > 1 ? W / (n - 1) : 0;
            let line = '';
            for (let i = 0; i < n; i++) line += (i ? ' ' : '') + (n > 1 ? i * step : W).toFixed(1) + ',' + y(points[i]).toFixed(1);
            if (n === 1) line = '0,' + y(points[0]).toFixed(1) + ' ' + line;
            const c = row.cells;
            c.line.setAttribute('points', line);
            c.area.setAttribute('d', line ? 'M0,' + H + ' L' + line.replace(/ /g, ' L') + ' L' + W + ',' + H + ' Z' : '');
            if (base !== null) {
                const by = y(base).toFixed(1);
                c.base.setAttribute('y1', by);
                c.base.setAttribute('y2', by);
                c.base.style.display = '';
            } else {
                c.base.style.display = 'none';
            }
        }

        _renderEmpty() {
            this.frame.set('empty', () => {
                const d = this.dom;
                const count = this.rows.size;
                const loading = this.watchlistMode === 'loading';
                d.empty.hidden = count > 0 || loading;
                d.table.hidden = count === 0 && !loading;
                d.count.textContent = count ? String(count) : '';
                if (count === 0 && !loading) {
                    d.quickAdd.replaceChildren();
                    for (const t of QUICK_ADD) {
                        const b = el('button', 'chip-btn', '+ ' + t);
                        b.type = 'button';
                        b.dataset.ticker = t;
                        d.quickAdd.appendChild(b);
                    }
                }
                d.ruleTickers.replaceChildren();
                for (const t of this.rows.keys()) {
                    const option = el('option');
                    option.value = t;
                    d.ruleTickers.appendChild(option);
                }
            });
        }

        _setLoading(on) {
            this.frame.set('loading', () => {
                const rows = this.dom.rows;
                for (const s of rows.querySelectorAll('tr.skeleton-row')) s.remove();
                if (on && this.rows.size === 0) {
                    for (let i = 0; i < 4; i++) {
                        const tr = el('tr', 'skeleton-row');
                        const td = el('td');
                        td.colSpan = 8;
                        td.appendChild(el('span', 'skeleton skeleton-line'));
                        tr.appendChild(td);
                        rows.appendChild(tr);
                    }
                }
            });
            if (!on) this._renderEmpty();
        }

        // ───────────── price chart ─────────────

        /**
         * Open the price chart of `ticker` (a row on the page): its prices so far (the stream's history
         * at subscribe, then every update), then live. Resolves once drawn; to false when it cannot be.
         */
        async openChart(raw) {
            const ticker = parseTicker(raw);
            const row = ticker && this.rows.get(ticker);
            if (!row || this.destroyed) return false;
            const d = this.dom;
            this.chartTicker = ticker;
            d.chartTitle.textContent = ticker;
            this._chartHeader(row);
            this._renderChartKind();
            if (!d.chartDialog.open) d.chartDialog.showModal();
            let lib;
            try {
                lib = await window.PriceChart.loadLibrary(document);
            } catch (err) {
                console.warn('realtime-dashboard: ' + err.message);
                d.chartNote.textContent = 'The chart cannot be shown: ' + err.message + '.';
                return false;
            }
            if (this.destroyed || this.chartTicker !== ticker) return false;
            if (!this.chart) {
                const zone = exchangeZone(this.exchange);
                this.chart = new window.PriceChart(d.chartCanvas, {
                    library: lib,
                    timeZone: zone || Intl.DateTimeFormat().resolvedOptions().timeZone,
                    zoneLabel: zoneName(zone, new Date()),
                    colors: this._chartColors(),
                });
            }
            this._drawChart(row);
            return true;
        }

        /** Close the chart (the dialog's own close event does the rest). */
        closeChart() {
            const dialog = this.dom && this.dom.chartDialog;
            if (dialog && dialog.open) dialog.close();
            this._chartClosed();
        }

        _chartClosed() {
            // The dialog's close event comes a task after close(): a chart opened again meanwhile stays.
            const dialog = this.dom && this.dom.chartDialog;
            if (!(dialog && dialog.open)) this.chartTicker = null;
        }

        /** 'line' or 'candles', remembered in this browser. */
        setChartKind(kind) {
            this.chartKind = kind === 'candles' ? 'candles' : 'line';
            storage.set(KEYS.chartKind, this.chartKind === 'candles' ? 'candles' : null);
            this._renderChartKind();
            const row = this.chartTicker && this.rows.get(this.chartTicker);
            if (this.chart && row) {
                this.chart.setKind(this.chartKind);
                this._chartNote(row);
            }
            return this.chartKind;
        }

        _drawChart(row) {
            this.chart.show({
                times: row.times,
                prices: row.prices,
                previousClose: num(row.last && row.last.previous_close),
                kind: this.chartKind,
            });
            this._chartNote(row);
        }

        /** A new price of the open chart's ticker (`recorded`: what recordPrice did with it). */
        _chartPrice(row, recorded) {
            this._chartHeader(row);
            if (!this.chart || !recorded) return;
            if (recorded === 'insert' || recorded === 'trim' || recorded === 'reset') {
                this._drawChart(row);
                return;
            }
            const n = row.times.length;
            this.chart.push(row.times[n - 1], row.prices[n - 1]);
            this._chartNote(row);
        }

        _chartHeader(row) {
            const d = this.dom;
            const last = row.last;
            this.ws.updateElementIfChanged(d.chartPrice, last ? last.price : null, fmtPrice);
            this.ws.updateElementIfChanged(d.chartChange, last ? fmtChange(last.change) + ' (' + fmtPercent(last.change_percent) + ')' : '');
            this.frame.set('chart-trend', () => {
                d.chartDialog.dataset.trend = row.trend;
            });
        }

        _chartNote(row) {
            const n = row.times.length;
            const zone = exchangeZone(this.exchange);
            let text;
            if (!n) {
                text = 'Waiting for the first price of ' + row.ticker + '…';
            } else {
                text = n + (n === 1 ? ' price' : ' prices') + ' since ' + fmtMarketTime(new Date(row.times[0]), zone);
                if (this.chartKind === 'candles' && this.chart) text += ' · ' + window.PriceChart.intervalLabel(this.chart.interval) + ' candles';
                text += ' · live';
            }
            this.ws.updateElementIfChanged(this.dom.chartNote, text);
        }

        _renderChartKind() {
            for (const button of this.dom.chartKinds) {
                button.setAttribute('aria-pressed', button.dataset.kind === this.chartKind ? 'true' : 'false');
            }
        }

        /** The chart's colours from the page's theme (light or dark). */
        _chartColors() {
            const css = window.getComputedStyle(document.documentElement);
            const v = (name) => css.getPropertyValue(name).trim();
            return { text: v('--text-2'), grid: v('--border'), border: v('--border-strong'), up: v('--up'), down: v('--down'), muted: v('--muted') };
        }

        // ───────────── watchlist (REST) ─────────────

        _localList() {
            const raw = storage.get(KEYS.watchlist(this.userId));
            if (raw === null) return null;
            try {
                const list = JSON.parse(raw);
                return Array.isArray(list) ? list.map(parseTicker).filter(Boolean) : null;
            } catch (_) {
                return null;
            }
        }

        _saveLocal() {
            storage.set(KEYS.watchlist(this.userId), JSON.stringify(Array.from(this.watchlist)));
        }

        _setWatchlistMode(mode, note) {
            this.watchlistMode = mode;
            this.frame.set('watch-note', () => {
                this.dom.watchNote.hidden = !note;
                this.dom.watchNote.textContent = note || '';
                this.dom.watchNote.dataset.mode = mode;
            });
        }

        /** Load the watchlist (server first, this browser when the API is missing) and follow it. */
        async loadWatchlist() {
            const res = await this.api.get('/api/watchlist');
            if (this.destroyed) return;
            let tickers;
            if (res.ok && res.data && Array.isArray(res.data.tickers)) {
                this._setWatchlistMode('server', null);
                tickers = res.data.tickers.map(parseTicker).filter(Boolean);
            } else if (res.status === 404) {
                this._setWatchlistMode('local', 'The watchlist service is not available on this server: your list is kept in this browser.');
                const local = this._localList();
                tickers = local === null ? DEFAULT_TICKERS.slice() : local;
            } else {
                const local = this._localList();
                this._setWatchlistMode('degraded', errorText(res, 'Could not load your watchlist') + '. Showing the copy saved in this browser.');
                tickers = local === null ? Array.from(this.watchlist) : local;
            }
            const next = new Set(tickers);
            for (const t of this.watchlist) {
                if (!next.has(t)) this.unsubscribeTicker(t);
            }
            this.watchlist = next;
            for (const t of next) this.subscribeTicker(t);
            this._saveLocal();
            this._renderEmpty();
        }

        async _submitWatchlist() {
            const input = this.dom.watchInput;
            const result = await this.addToWatchlist(input.value);
            if (result.ok) input.value = '';
        }

        /** Add to the watchlist: the row appears at once; the server is told (or this browser remembers). */
        async addToWatchlist(raw) {
            const ticker = parseTicker(raw);
            const errorNode = this.dom.watchError;
            if (!ticker) {
                const shown = String(raw || '').trim();
                this._showError(errorNode, shown ? '"' + shown.slice(0, 16) + '" is not a ticker symbol' : 'Enter a ticker symbol, e.g. TSLA');
                return { ok: false };
            }
            this._showError(errorNode, null);
            if (this.watchlist.has(ticker)) {
                this._highlight(ticker, 'seen');
                return { ok: true, ticker: ticker };
            }
            this.watchlist.add(ticker);
            this.subscribeTicker(ticker);
            this._saveLocal();
            if (this.watchlistMode === 'local') return { ok: true, ticker: ticker };
            const res = await this.api.post('/api/watchlist', { ticker: ticker });
            if (this.destroyed) return { ok: false };
            if (res.ok) { // 201 added, 200 already there
                if (this.watchlistMode !== 'server') this._setWatchlistMode('server', null);
                return { ok: true, ticker: ticker };
            }
            if (res.status === 404) {
                this._setWatchlistMode('local', 'The watchlist service is not available on this server: your list is kept in this browser.');
                return { ok: true, ticker: ticker };
            }
            if (res.status >= 400 && res.status < 500) {
                // Refused (400 invalid symbol, 409 watchlist full, ...): undo.
                this.watchlist.delete(ticker);
                this.unsubscribeTicker(ticker);
                this._saveLocal();
                this._showError(errorNode, errorText(res, 'Could not add ' + ticker));
                return { ok: false };
            }
            this._setWatchlistMode('degraded', errorText(res, 'Could not save ' + ticker) + '. It is kept in this browser for now.');
            return { ok: true, ticker: ticker };
        }

        /** Remove from the watchlist (and unsubscribe). */
        async removeFromWatchlist(raw) {
            const ticker = parseTicker(raw);
            if (!ticker) return { ok: false };
            const saved = this.watchlist.delete(ticker);
            this.unsubscribeTicker(ticker);
            this._saveLocal();
            if (!saved || this.watchlistMode === 'local') return { ok: true };
            const res = await this.api.del('/api/watchlist/' + encodeURIComponent(ticker));
            if (this.destroyed) return { ok: false };
            // 404 from a server whose watchlist API answered before: the ticker was not in the list.
            if (res.ok || res.status === 404) return { ok: true };
            this.watchlist.add(ticker);
            this.subscribeTicker(ticker);
            this._saveLocal();
            this._showError(this.dom.watchError, errorText(res, 'Could not remove ' + ticker));
            return { ok: false };
        }

        _highlight(ticker, effect) {
            const row = this.rows.get(ticker);
            if (!row) return;
            this.frame.set(row.ticker + ':effect', () => {
                // toggling the name restarts the animation
                const current = row.el.dataset.effect || '';
                row.el.dataset.effect = current === effect + '1' ? effect + '2' : effect + '1';
            });
        }

        _showError(node, text) {
            this.frame.set(node, () => {
                node.hidden = !text;
                node.textContent = text || '';
            });
        }

        // ───────────── market status ─────────────

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
            this.ws.updateElementIfChanged(this.dom.marketLabel, MARKET_LABEL[status] || status.replace(/_/g, ' '));
            this.ws.updateElementIfChanged(this.dom.marketNext, next);
            this.frame.set('market', () => {
                this.dom.market.dataset.status = status;
                this.dom.market.title = title;
            });
        }

        // ───────────── patterns and alerts ─────────────

        _onPattern(msg, info) {
            const replayed = !!(info && info.replayed);
            const ticker = parseTicker(msg.ticker) || String(msg.ticker || '');
            const rr = num(msg.risk_reward_ratio);
            const parts = [
                'Score ' + (num(msg.score) === null ? '—' : num(msg.score).toFixed(1)),
                'Entry ' + fmtMoney(msg.entry_price),
                'Stop ' + fmtMoney(msg.stop_price),
                'Target ' + fmtMoney(msg.target_price),
            ];
            if (rr !== null) parts.push('R/R ' + rr.toFixed(2));
            const item = {
                kind: 'pattern',
                key: 'pattern|' + ticker + '|' + msg.pattern_type + '|' + msg.timestamp,
                title: msg.pattern_type + ' · ' + ticker,
                body: parts.join(' · '),
                detail: msg.message || '',
                time: parseTime(msg.timestamp) || new Date(),
                past: replayed,
            };
            const listed = this._inFeed(item.key);
            this._addFeed(item);
            // The latest pattern of each ticker marks its row, also a row added later.
            const chip = {
                text: msg.pattern_type + (num(msg.score) === null ? '' : ' ' + num(msg.score).toFixed(1)),
                title: item.title + ': ' + item.body,
                time: item.time.getTime(),
            };
            const known = this.patterns.get(ticker);
            if (!known || known.time <= chip.time) {
                this.patterns.delete(ticker);
                this.patterns.set(ticker, chip);
                if (this.patterns.size > MAX_PATTERN_CHIPS) this.patterns.delete(this.patterns.keys().next().value);
                this._paintChip(ticker);
            }
            if (replayed || listed) return; // only new detections notify
            this._highlight(ticker, 'pattern');
            this._toast(item);
        }

        _paintChip(ticker) {
            const row = this.rows.get(ticker);
            const chip = this.patterns.get(ticker);
            if (!row || !chip) return;
            this.frame.set(ticker + ':chip', () => {
                row.cells.chip.hidden = false;
                row.cells.chip.textContent = chip.text;
                row.cells.chip.title = chip.title;
                row.el.classList.add('has-pattern');
            });
        }

        _onAlertTrigger(msg, info) {
            const replayed = !!(info && info.replayed);
            const item = this._alertItem(msg, replayed);
            // Already listed (same alert_id: from /api/alerts/events, or received twice): no toast, no beep.
            const listed = this._inFeed(item.key);
            this._addFeed(item);
            if (replayed || listed) return;
            this._highlight(parseTicker(msg.ticker), 'alert');
            this._toast(item);
            if (this.soundEnabled) this.beeper.play('alert');
            if (msg.alert_id && this.rulesAvailable && this.rulesTimer === null) {
                // one of the user's rules fired: show its new state
                this.rulesTimer = this._later(() => {
                    this.rulesTimer = null;
                    this.loadRules();
                }, RULES_REFRESH_MS);
            }
        }

        _alertItem(msg, past) {
            const ticker = parseTicker(msg.ticker) || String(msg.ticker || '');
            const kind = msg.alert_type || msg.kind || 'alert';
            const label = KIND_LABEL.get(kind) || String(kind).replace(/_/g, ' ');
            const body = msg.message
                || (ticker + ' at ' + fmtMoney(msg.current_price) + ' (trigger ' + fmtThreshold(kind, msg.trigger_price) + ')');
            return {
                kind: 'alert',
                key: 'alert|' + (msg.alert_id || ticker + '|' + msg.timestamp),
                title: ticker + ' · ' + label.charAt(0).toUpperCase() + label.slice(1),
                body: body,
                detail: num(msg.current_price) === null ? '' : 'Last ' + fmtMoney(msg.current_price),
                time: parseTime(msg.timestamp) || new Date(),
                past: past,
            };
        }

        /** Past triggers: "while you were away". */
        async loadAlertEvents() {
            const res = await this.api.get('/api/alerts/events?limit=' + EVENTS_LIMIT);
            if (this.destroyed || !res.ok) return;
            const list = Array.isArray(res.data) ? res.data : (res.data && (res.data.events || res.data.items)) || [];
            for (const e of list.slice(0, EVENTS_LIMIT)) {
                if (!e || typeof e !== 'object') continue;
                const msg = {
                    alert_id: e.alert_id,
                    ticker: e.ticker,
                    alert_type: e.alert_type || e.kind,
                    trigger_price: e.trigger_price !== undefined ? e.trigger_price : e.threshold,
                    current_price: e.current_price !== undefined ? e.current_price : e.price,
                    message: e.message,
                    timestamp: e.timestamp || e.triggered_at || e.created_at,
                };
                this._addFeed(this._alertItem(msg, true));
            }
        }

        /** Whether an item with this key is in the activity feed already. */
        _inFeed(key) {
            return this.feed.some((f) => f.key === key);
        }

        /** Insert into the activity feed, newest first, without duplicates; false when already there. */
        _addFeed(item) {
            if (this._inFeed(item.key)) return false;
            const node = el('li', 'feed-item feed-' + item.kind);
            const icon = el('span', 'feed-icon');
            icon.setAttribute('aria-hidden', 'true');
            const text = el('div', 'feed-text');
            text.append(el('div', 'feed-title', item.title), el('div', 'feed-body', item.body));
            const meta = el('div', 'feed-meta');
            const time = el('time', 'feed-time', fmtClock(item.time));
            time.dateTime = item.time.toISOString();
            time.title = fullFormat.format(item.time);
            meta.appendChild(time);
            // Missed messages (history, past triggers) newer than the last time this user was here
            const away = !!item.past && this.lastSeen !== null && item.time.getTime() > this.lastSeen;
            if (item.past) meta.appendChild(el('span', away ? 'tag tag-away' : 'tag', away ? 'while away' : 'earlier'));
            node.append(icon, text, meta);

            const t = item.time.getTime();
            let index = this.feed.findIndex((f) => f.time < t);
            if (index === -1) index = this.feed.length;
            if (index >= MAX_FEED) return false; // older than everything kept
            this.feed.splice(index, 0, { key: item.key, time: t, node: node, away: away });
            if (this.feed.length > MAX_FEED) this.feed.length = MAX_FEED;
            this.frame.set('feed', () => this._paintFeed());
            return true;
        }

        /** Make the list match this.feed: drop what was trimmed, put the rest in order. */
        _paintFeed() {
            const list = this.dom.feed;
            const keep = new Set(this.feed.map((f) => f.node));
            for (const child of Array.from(list.children)) {
                if (!keep.has(child)) child.remove();
            }
            let previous = null;
            for (const f of this.feed) {
                const expected = previous ? previous.nextSibling : list.firstChild;
                if (expected !== f.node) list.insertBefore(f.node, expected);
                previous = f.node;
            }
            this.dom.feedEmpty.hidden = this.feed.length > 0;
            const away = this.feed.filter((f) => f.away).length;
            this.dom.away.hidden = away === 0;
            this.dom.away.textContent = away ? away + ' while you were away' : '';
        }

        _toast(item) {
            const node = el('div', 'toast toast-' + item.kind);
            node.setAttribute('role', item.kind === 'alert' ? 'alert' : 'status');
            const icon = el('span', 'toast-icon');
            icon.setAttribute('aria-hidden', 'true');
            const body = el('div', 'toast-body');
            const head = el('div', 'toast-head');
            head.appendChild(el('span', 'toast-kind', item.kind === 'alert' ? 'Alert triggered' : 'Pattern detected'));
            head.appendChild(el('time', 'toast-time', fmtClock(item.time)));
            body.append(head, el('div', 'toast-title', item.title), el('div', 'toast-text', item.body));
            if (item.detail) body.appendChild(el('div', 'toast-detail', item.detail));
            const close = el('button', 'toast-close', '×');
            close.type = 'button';
            close.setAttribute('aria-label', 'Dismiss');
            node.append(icon, body, close);
            this.toasts.add(node);
            const overflow = [];
            for (const t of this.toasts) {
                if (this.toasts.size - overflow.length <= MAX_TOASTS) break;
                overflow.push(t);
            }
            for (const t of overflow) this.toasts.delete(t);
            this.frame.set(node, () => {
                for (const t of overflow) t.remove();
                if (this.toasts.has(node)) this.dom.toasts.appendChild(node);
            });
            node._timer = this._later(() => this._dismissToast(node), TOAST_MS);
        }

        _dismissToast(node) {
            if (!this.toasts.delete(node)) return;
            window.clearTimeout(node._timer);
            this.timers.delete(node._timer);
            this.frame.set(node, () => node.classList.add('toast-leaving'));
            this._later(() => node.remove(), 220);
        }

        // ───────────── alert rules (REST) ─────────────

        async loadRules() {
            const res = await this.api.get('/api/alerts/rules');
            if (this.destroyed) return;
            if (res.status === 404) {
                this._rulesUnavailable();
                return;
            }
            if (!res.ok) {
                this._showNote(this.dom.ruleNote, errorText(res, 'Could not load alert rules'));
                return;
            }
            this.rulesAvailable = true;
            this._showNote(this.dom.ruleNote, null);
            const list = Array.isArray(res.data) ? res.data : (res.data && (res.data.rules || res.data.items)) || [];
            this.rules.clear();
            for (const rule of list) {
                if (rule && rule.id !== undefined && rule.id !== null) this.rules.set(String(rule.id), rule);
            }
            this._renderRules();
        }

        _rulesUnavailable() {
            this.rulesAvailable = false;
            this._showNote(this.dom.ruleNote, 'Alert rules are not available on this server yet.');
        }

        _showNote(node, text) {
            this.frame.set(node, () => {
                node.hidden = !text;
                node.textContent = text || '';
            });
        }

        async _submitRule() {
            const d = this.dom;
            const result = await this.createAlertRule({
                ticker: d.ruleTicker.value,
                kind: d.ruleKind.value,
                threshold: d.ruleThreshold.value,
            });
            if (result.ok) {
                d.ruleThreshold.value = '';
            }
        }

        /** Create an alert rule ({ticker, kind, threshold}); re-arms when the price crosses back. */
        async createAlertRule(input) {
            const errorNode = this.dom.ruleError;
            const ticker = parseTicker(input.ticker);
            const kind = KIND_LABEL.has(input.kind) ? input.kind : null;
            const threshold = num(typeof input.threshold === 'string' && input.threshold.trim() === '' ? NaN : input.threshold);
            if (!ticker) return this._ruleError('Enter a ticker symbol, e.g. AAPL');
            if (!kind) return this._ruleError('Choose a condition');
            if (threshold === null || (!kind.startsWith('change_percent') && threshold <= 0)) {
                return this._ruleError('Enter a threshold' + (kind.startsWith('change_percent') ? '' : ' above zero'));
            }
            this._showError(errorNode, null);
            const res = await this.api.post('/api/alerts/rules', { ticker: ticker, kind: kind, threshold: threshold, rearm: 'recross' });
            if (this.destroyed) return { ok: false };
            if (res.status === 404) {
                this._rulesUnavailable();
                return { ok: false };
            }
            if (!res.ok) return this._ruleError(errorText(res, 'Could not create the alert'));
            this.rulesAvailable = true;
            this._showNote(this.dom.ruleNote, null);
            if (res.data && res.data.id !== undefined && res.data.id !== null) {
                this.rules.set(String(res.data.id), res.data);
                this._renderRules();
            } else {
                await this.loadRules();
            }
            return { ok: true, rule: res.data };
        }

        _ruleError(text) {
            this._showError(this.dom.ruleError, text);
            return { ok: false, error: text };
        }

        async deleteAlertRule(id) {
            const key = String(id);
            const rule = this.rules.get(key);
            this.rules.delete(key);
            this._renderRules();
            const res = await this.api.del('/api/alerts/rules/' + encodeURIComponent(key));
            if (this.destroyed) return { ok: false };
            if (res.ok || res.status === 404) return { ok: true };
            if (rule) this.rules.set(key, rule);
            this._renderRules();
            this._showError(this.dom.ruleError, errorText(res, 'Could not delete the alert'));
            return { ok: false };
        }

        _renderRules() {
            this.frame.set('rules', () => {
                const list = this.dom.ruleList;
                list.replaceChildren();
                this.dom.rulesEmpty.hidden = this.rules.size > 0 || this.rulesAvailable !== true;
                for (const [id, rule] of this.rules) {
                    const kind = rule.kind || rule.alert_type;
                    const li = el('li', 'rule');
                    const text = el('div', 'rule-text');
                    text.appendChild(el('span', 'rule-ticker', rule.ticker));
                    text.appendChild(el('span', 'rule-cond', (KIND_LABEL.get(kind) || kind) + ' ' + fmtThreshold(kind, rule.threshold)));
                    if (rule.armed === false) text.appendChild(el('span', 'tag', 'disarmed'));
                    else if (num(rule.triggers) > 0) text.appendChild(el('span', 'tag', 'fired ' + rule.triggers + '×'));
                    const del = el('button', 'icon-btn', '×');
                    del.type = 'button';
                    del.dataset.ruleId = id;
                    del.setAttribute('aria-label', 'Delete alert ' + rule.ticker + ' ' + (KIND_LABEL.get(kind) || kind));
                    li.append(text, del);
                    list.appendChild(li);
                }
            });
        }

        // ───────────── sound ─────────────

        setSoundEnabled(on) {
            this.soundEnabled = !!on;
            storage.set(KEYS.sound, this.soundEnabled ? 'on' : null);
            if (this.soundEnabled && this.beeper.unlock()) this.beeper.play('confirm');
            this._renderSound();
            return this.soundEnabled;
        }

        _renderSound() {
            const on = this.soundEnabled;
            const button = this.dom.sound;
            this.ws.updateElementIfChanged(button.querySelector('.btn-text'), on ? 'Sound on' : 'Sound off');
            this.frame.set('sound', () => {
                button.setAttribute('aria-pressed', on ? 'true' : 'false');
                button.title = on ? 'Sound alerts are on: click to mute' : 'Sound alerts are off: click to turn them on';
            });
        }

        // ───────────── stats ─────────────

        /** Show or hide the statistics panel; returns whether it is now shown. */
        toggleStats(force) {
            const panel = this.dom.stats;
            const show = force === undefined ? panel.hidden : !!force;
            panel.hidden = !show;
            this.dom.statsToggle.setAttribute('aria-expanded', show ? 'true' : 'false');
            if (show) {
                this._renderStats();
                // In the side column, beside the watchlist (never over it); below it on a phone.
                if (typeof panel.scrollIntoView === 'function') panel.scrollIntoView({ block: 'nearest' });
                if (this.statsTimer === null) this.statsTimer = window.setInterval(() => this._renderStats(), STATS_REFRESH_MS);
            } else if (this.statsTimer !== null) {
                window.clearInterval(this.statsTimer);
                this.statsTimer = null;
            }
            return show;
        }

        _renderStats() {
            const stats = this.ws.getStats();
            if (!this.statsCells) {
                this.statsCells = new Map();
                const list = this.dom.statsList;
                for (const key of Object.keys(stats)) {
                    if (key === 'streams') continue;
                    const dt = el('dt', null, key);
                    const dd = el('dd');
                    dd.dataset.stat = key;
                    list.append(dt, dd);
                    this.statsCells.set(key, dd);
                }
            }
            for (const [key, dd] of this.statsCells) {
                const v = stats[key];
                let text;
                if (Array.isArray(v)) text = v.length ? v.join(', ') : '—';
                else if (v === null || v === undefined) text = '—';
                else if (key === 'lastMessageTime') text = fmtClock(parseTime(v));
                else if (key === 'latencyMs') text = v + ' ms';
                else text = String(v);
                this.ws.updateElementIfChanged(dd, text);
            }
        }
    }

    RealtimeDashboard.parseTicker = parseTicker;
    RealtimeDashboard.fmtMarketTime = fmtMarketTime;
    RealtimeDashboard.exchangeZone = exchangeZone;
    RealtimeDashboard.decodeToken = decodeToken;
    RealtimeDashboard.tokenFromHash = tokenFromHash;
    RealtimeDashboard.safeLink = safeLink;
    RealtimeDashboard.recordPrice = recordPrice;
    window.RealtimeDashboard = RealtimeDashboard;

    function boot() {
        if (window.realtimeDashboard || typeof window.WebSocketClient !== 'function') {
            if (typeof window.WebSocketClient !== 'function') console.error('realtime-dashboard: websocket-client.js is not loaded');
            return;
        }
        window.realtimeDashboard = new RealtimeDashboard().start();
    }

    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot, { once: true });
    else boot();
})();
