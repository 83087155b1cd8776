// @ts-check
/**
 * Legend Realtime dashboard — pattern detections and alert triggers: what they put in the Activity list
 * (activity.js; also what came while the page was closed), the notifications and beeps they raise
 * (toasts.js, sound.js), what they mark on the watchlist's rows (a pattern chip, a highlight), and the
 * rules read again after one fired; and the Beeper that sound.js plays.
 * AlertFeed is an object of its own (the dashboard's `alerts`): it gets the REST client and the parts it
 * tells (Activity list, notifications, sound, watchlist, alert rules), the dashboard's timer function
 * and whether the page is gone; it keeps only its pending rules refresh.
 */
import { fmtMoney, fmtThreshold, num, parseTicker, parseTime } from './format.js';
import { KIND_LABEL } from './rule-kinds.js';

/** @typedef {import('./rest.js').Api} Api */
/** @typedef {import('./activity.js').ActivityFeed} ActivityFeed */
/** @typedef {import('./activity.js').FeedItem} FeedItem */
/** @typedef {import('./toasts.js').Toasts} Toasts */
/** @typedef {import('./sound.js').SoundAlerts} SoundAlerts */
/** @typedef {import('./voice.js').VoiceAlerts} VoiceAlerts */
/** @typedef {import('./watchlist.js').Watchlist} Watchlist */
/** @typedef {import('./rules.js').AlertRules} AlertRules */

export const EVENTS_LIMIT = 20;
export const RULES_REFRESH_MS = 1000; // rules are read again this long after a trigger (their counters moved)
// After a trigger, the past triggers are read again after these delays while one of its deliveries is
// still under way (sending or retrying), so the Activity list says where it went.
export const DELIVERY_REREAD_MS = [2000, 10000, 60000];
const UNDER_WAY = new Set(['pending', 'retrying']);

/** Short WebAudio beeps; the AudioContext is only created after a user gesture. */
export class Beeper {
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

/**
 * The Activity item of an alert trigger (live, replayed, or listed by /api/alerts/events: `past`).
 * @param {any} msg an alert_trigger message
 * @param {boolean} past
 * @returns {FeedItem & {detail: string}}
 */
export function alertItem(msg, past) {
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

export class AlertFeed {
    /**
     * @param {object} parts
     * @param {Pick<Api, 'get'>} parts.api the REST client (past triggers)
     * @param {Pick<ActivityFeed, 'has' | 'add' | 'setDeliveries'>} parts.activity the Activity list
     * @param {Pick<Toasts, 'show'>} parts.toasts the notifications
     * @param {Pick<SoundAlerts, 'alert'>} parts.sound beeps for an alert when sound is on
     * @param {Pick<VoiceAlerts, 'alert' | 'pattern'>} [parts.voice] reads alerts out when voice is on
     * @param {Pick<Watchlist, 'showPattern' | 'highlight'>} parts.watchlist the rows: pattern chips and highlights
     * @param {Pick<AlertRules, 'available' | 'load'>} parts.rules the user's alert rules (read again after one fired)
     * @param {(fn: () => void, ms: number) => number} parts.later runs fn after ms unless the page is destroyed
     * @param {() => boolean} parts.destroyed whether the page was destroyed (answers arriving later are ignored)
     */
    constructor({ api, activity, toasts, sound, voice, watchlist, rules, later, destroyed }) {
        this._api = api;
        this._activity = activity;
        this._toasts = toasts;
        this._sound = sound;
        this._voice = voice || null;
        this._watchlist = watchlist;
        this._rules = rules;
        this._later = later;
        this._destroyed = destroyed;
        /** @type {number | null} the pending re-read of the rules after a trigger */
        this.rulesTimer = null;
        /** @type {number | null} the pending re-read of the past triggers (their deliveries) after a trigger */
        this.eventsTimer = null;
        /** @type {boolean} whether the server lists past triggers */
        this.eventsAvailable = false;
    }

    /**
     * A pattern_alert: listed, its row's chip, and (when new) a highlight and a notification.
     * @param {any} msg
     * @param {{replayed?: boolean}} [info] replayed: from history (listed, no notification)
     */
    onPattern(msg, info) {
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
            source: msg,
        };
        const listed = this._activity.has(item.key);
        this._activity.add(item);
        // The latest pattern of each ticker marks its row, also a row added later.
        this._watchlist.showPattern(ticker, {
            text: msg.pattern_type + (num(msg.score) === null ? '' : ' ' + num(msg.score).toFixed(1)),
            title: item.title + ': ' + item.body,
            time: item.time.getTime(),
        });
        if (replayed || listed) return; // only new detections notify
        this._watchlist.highlight(ticker, 'pattern');
        this._toasts.show(item);
        if (this._voice) this._voice.pattern(msg);
    }

    /**
     * An alert_trigger: listed, and (when new) a highlight, a notification, a beep, and the rules read again.
     * @param {any} msg
     * @param {{replayed?: boolean}} [info] replayed: from history (listed, no notification)
     */
    onAlertTrigger(msg, info) {
        const replayed = !!(info && info.replayed);
        const item = alertItem(msg, replayed);
        // Already listed (same alert_id: from /api/alerts/events, or received twice): no toast, no beep.
        const listed = this._activity.has(item.key);
        this._activity.add(item);
        if (replayed || listed) return;
        this._watchlist.highlight(parseTicker(msg.ticker), 'alert');
        this._toasts.show(item);
        this._sound.alert();
        if (this._voice) this._voice.alert(msg);
        if (msg.alert_id && this.eventsAvailable && this.eventsTimer === null) this._followDeliveries(0);
        if (msg.alert_id && this._rules.available && this.rulesTimer === null) {
            // one of the user's rules fired: show its new state
            this.rulesTimer = this._later(() => {
                this.rulesTimer = null;
                this._rules.load();
            }, RULES_REFRESH_MS);
        }
    }

    /**
     * Read the past triggers again after DELIVERY_REREAD_MS[attempt], and again while one of their
     * deliveries is still under way.
     * @param {number} attempt
     */
    _followDeliveries(attempt) {
        if (attempt >= DELIVERY_REREAD_MS.length) return;
        this.eventsTimer = this._later(async () => {
            const underWay = await this.loadEvents();
            this.eventsTimer = null;
            if (underWay) this._followDeliveries(attempt + 1);
        }, DELIVERY_REREAD_MS[attempt]);
    }

    /**
     * Past triggers (GET /api/alerts/events): "while you were away", each with where it went. Resolves to
     * whether one of their deliveries is still under way.
     */
    async loadEvents() {
        const res = await this._api.get('/api/alerts/events?limit=' + EVENTS_LIMIT);
        if (this._destroyed() || !res.ok) return false;
        this.eventsAvailable = true;
        let underWay = false;
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
            const item = alertItem(msg, true);
            this._activity.add(item);
            if (Array.isArray(e.deliveries)) {
                this._activity.setDeliveries(item.key, e.deliveries);
                underWay = underWay || e.deliveries.some((d) => d && UNDER_WAY.has(d.state));
            }
        }
        return underWay;
    }
}
