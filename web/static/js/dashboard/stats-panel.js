// @ts-check
/**
 * Legend Realtime dashboard — the statistics panel: the client's getStats(), refreshed every second
 * while shown, each under a readable label (the raw name on hover; one the page does not know keeps it). An object of its own: it gets the panel's elements, the statistics source and the DOM
 * writer, and keeps its timer and cells to itself.
 */
import { el } from './dom.js';
import { fmtClock, parseTime } from './format.js';

/** @typedef {import('./dom.js').DomWriter} DomWriter */

export const STATS_REFRESH_MS = 1000;

/** What each known statistic of getStats() is called on the panel; its raw name is on hover. */
export const STAT_LABELS = {
    connected: 'Connected',
    reconnecting: 'Reconnecting',
    reconnectAttempts: 'Reconnect attempts (this outage)',
    messagesReceived: 'Messages received',
    messagesSent: 'Messages sent',
    updatesApplied: 'Page updates written',
    reconnects: 'Reconnects',
    errors: 'Errors',
    lastMessageTime: 'Last message',
    subscriptions: 'Subscriptions',
    queueSize: 'Messages waiting',
    pendingUpdates: 'Page updates waiting',
    cacheSize: 'Cached cells',
    droppedMessages: 'Messages dropped',
    duplicatesDropped: 'Duplicates ignored',
    conflatedMessages: 'Prices superseded (conflated)',
    queueOverflows: 'Queue overflows',
    latencyMs: 'Round trip (ping)',
    state: 'Connection state',
    serviceStatus: 'Server delivery',
    connectionId: 'Connection id',
    url: 'Server address',
    gaps: 'Messages lost (gaps)',
};

/**
 * The label of a statistic: from STAT_LABELS, or its raw name for one this page does not know.
 * @param {string} key
 */
export function statLabel(key) {
    return Object.prototype.hasOwnProperty.call(STAT_LABELS, key) ? STAT_LABELS[key] : key;
}

/**
 * The client's gaps as text: 'patterns 455–506, alerts 3–9', or '—' when none.
 * @param {Record<string, {from: number, to: number}>} gaps
 */
export function fmtGaps(gaps) {
    const parts = Object.keys(gaps).sort().map((s) => s + ' ' + gaps[s].from + (gaps[s].to === gaps[s].from ? '' : '–' + gaps[s].to));
    return parts.length ? parts.join(', ') : '—';
}

export class StatsPanel {
    /**
     * @param {object} parts
     * @param {{panel: any, list: any, toggle: any}} parts.dom the panel, its <dl>, and the button that opens it
     * @param {() => Record<string, unknown>} parts.getStats what to show (the client's getStats())
     * @param {DomWriter} parts.writer writes the values' text
     */
    constructor({ dom, getStats, writer }) {
        this._dom = dom;
        this._getStats = getStats;
        this._writer = writer;
        /** @type {number | null} */
        this._timer = null;
        /** @type {Map<string, any> | null} statistic -> its <dd>, made on first show */
        this._cells = null;
    }

    /**
     * Show or hide the panel (toggle without `force`); returns whether it is now shown.
     * @param {boolean} [force]
     */
    toggle(force) {
        const panel = this._dom.panel;
        const show = force === undefined ? panel.hidden : !!force;
        panel.hidden = !show;
        this._dom.toggle.setAttribute('aria-expanded', show ? 'true' : 'false');
        if (show) {
            this.render();
            // In the side column, beside the watchlist (never over it); below it on a phone.
            if (typeof panel.scrollIntoView === 'function') panel.scrollIntoView({ block: 'nearest' });
            if (this._timer === null) this._timer = window.setInterval(() => this.render(), STATS_REFRESH_MS);
        } else {
            this._stopTimer();
        }
        return show;
    }

    /** Write the current statistics into the panel. */
    render() {
        const stats = this._getStats();
        if (!this._cells) {
            this._cells = new Map();
            for (const key of Object.keys(stats)) {
                if (key === 'streams') continue;
                const dt = el('dt', null, statLabel(key));
                dt.title = key; // the name in getStats()
                const dd = el('dd');
                dd.dataset.stat = key;
                this._dom.list.append(dt, dd);
                this._cells.set(key, dd);
            }
        }
        for (const [key, dd] of this._cells) {
            const v = stats[key];
            let text;
            if (Array.isArray(v)) text = v.length ? v.join(', ') : '—';
            else if (v === null || v === undefined) text = '—';
            else if (key === 'lastMessageTime') text = fmtClock(parseTime(/** @type {any} */ (v)));
            else if (key === 'latencyMs') text = v + ' ms';
            else if (key === 'gaps') text = fmtGaps(/** @type {Record<string, {from: number, to: number}>} */ (v));
            else text = String(v);
            this._writer.write(dd, text);
        }
    }

    /** Stop refreshing (the page goes away). */
    destroy() {
        this._stopTimer();
    }

    _stopTimer() {
        if (this._timer !== null) window.clearInterval(this._timer);
        this._timer = null;
    }
}
