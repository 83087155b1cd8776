// @ts-check
/**
 * Legend Realtime dashboard — pattern detections and alert triggers: what they put in the Activity list
 * (activity.js; also what came while the page was closed), the notifications they raise (toasts.js),
 * the pattern chip of each row; and the Beeper that sound.js plays.
 * Methods of RealtimeDashboard (dashboard.js installs them); their state: patterns, rulesTimer; the
 * Activity list itself is activity.js's ActivityFeed.
 */
import { fmtMoney, fmtThreshold, num, parseTicker, parseTime } from './format.js';
import { KIND_LABEL } from './rules.js';

/** @typedef {import('./types.js').Dashboard} Dashboard */

export const MAX_PATTERN_CHIPS = 200;
export const EVENTS_LIMIT = 20;
export const RULES_REFRESH_MS = 1000; // rules are read again this long after a trigger (their counters moved)

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

/** @satisfies {ThisType<Dashboard>} */
export const alerts = {
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
        const listed = this.activity.has(item.key);
        this.activity.add(item);
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
        this.toasts.show(item);
    },

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
    },

    _onAlertTrigger(msg, info) {
        const replayed = !!(info && info.replayed);
        const item = this._alertItem(msg, replayed);
        // Already listed (same alert_id: from /api/alerts/events, or received twice): no toast, no beep.
        const listed = this.activity.has(item.key);
        this.activity.add(item);
        if (replayed || listed) return;
        this._highlight(parseTicker(msg.ticker), 'alert');
        this.toasts.show(item);
        this.sound.alert();
        if (msg.alert_id && this.alertRules.available && this.rulesTimer === null) {
            // one of the user's rules fired: show its new state
            this.rulesTimer = this._later(() => {
                this.rulesTimer = null;
                this.loadRules();
            }, RULES_REFRESH_MS);
        }
    },

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
    },

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
            this.activity.add(this._alertItem(msg, true));
        }
    },
};
