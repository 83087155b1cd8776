// @ts-check
/**
 * Legend Realtime dashboard — the statistics panel: ws.getStats(), refreshed every second while shown.
 * Methods of RealtimeDashboard (dashboard.js installs them); their state: statsTimer, statsCells.
 */
import { el } from './dom.js';
import { fmtClock, parseTime } from './format.js';

/** @typedef {import('./types.js').Dashboard} Dashboard */

export const STATS_REFRESH_MS = 1000;

/** @satisfies {ThisType<Dashboard>} */
export const statsPanel = {
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
    },

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
            this.writer.write(dd, text);
        }
    },
};
