// @ts-check
/**
 * Legend Realtime dashboard — a ticker's bars (OHLC and volume of one interval) as the chart keeps them:
 * pages of history from GET /api/bars/{ticker} (oldest first, the unfinished bar last), older pages put
 * in front as the user scrolls back, and live bars from the bars channel merged in. Pure, no DOM.
 */

/** The intervals the chart offers, as the server names them. */
export const BAR_INTERVALS = /** @type {const} */ (['1m', '5m', '15m', '1h', '1d']);
export const DEFAULT_INTERVAL = '1m';
export const BARS_PAGE = 500; // bars asked for per request

/** @typedef {typeof BAR_INTERVALS[number]} BarInterval */
/**
 * One bar: `ms` its start (epoch ms); `closed` once the server has fixed it (its period is over).
 * @typedef {{ms: number, open: number, high: number, low: number, close: number, volume: number, closed: boolean}} Bar
 */

/**
 * One of BAR_INTERVALS, or null.
 * @param {unknown} raw
 * @returns {BarInterval | null}
 */
export function parseInterval(raw) {
    const value = /** @type {BarInterval} */ (String(raw));
    return BAR_INTERVALS.includes(value) ? value : null;
}

/**
 * A bar from the REST answer or the bars channel ({time: ISO-8601, open, high, low, close, volume,
 * closed?}), or null when a field is missing or not a finite number.
 * @param {any} raw
 * @returns {Bar | null}
 */
export function parseBar(raw) {
    if (!raw || typeof raw !== 'object') return null;
    const ms = typeof raw.time === 'string' ? Date.parse(raw.time) : NaN;
    const fields = [raw.open, raw.high, raw.low, raw.close, raw.volume];
    if (!Number.isFinite(ms) || !fields.every((v) => typeof v === 'number' && Number.isFinite(v))) return null;
    return { ms, open: raw.open, high: raw.high, low: raw.low, close: raw.close, volume: raw.volume, closed: raw.closed === true };
}

/**
 * The bars of a REST answer ({ticker, interval, bars: [...]}), ascending, one per start; throws when
 * the answer is not one.
 * @param {any} body
 * @returns {Bar[]}
 */
export function pageBars(body) {
    if (!body || typeof body !== 'object' || !Array.isArray(body.bars)) throw new Error('the history answer has no bars');
    const bars = [];
    for (const raw of body.bars) {
        const bar = parseBar(raw);
        if (!bar) throw new Error('the history answer has a malformed bar: ' + JSON.stringify(raw));
        bars.push(bar);
    }
    bars.sort((a, b) => a.ms - b.ms);
    return bars.filter((bar, i) => i === 0 || bar.ms !== bars[i - 1].ms);
}

/** One ticker's bars of one interval, ascending by start. */
export class BarHistory {
    constructor() {
        /** @type {Bar[]} */
        this.bars = [];
    }

    /**
     * Start over from the newest page (what pageBars returned). `bars` is then changed in place only.
     * @param {Bar[]} page
     */
    reset(page) {
        this.bars = page.slice();
    }

    /**
     * Put an older page in front: only its bars older than the oldest kept. Returns how many were added
     * (0: history goes back no further).
     * @param {Bar[]} page
     */
    prepend(page) {
        const oldest = this.bars.length ? this.bars[0].ms : Infinity;
        const older = page.filter((bar) => bar.ms < oldest);
        this.bars.unshift(...older); // in place: the chart draws this same array
        return older.length;
    }

    /**
     * Merge a live bar. Returns 'update' (it is the last bar, now with these values), 'append' (a new
     * period: the bar before it is final), 'replace' (an earlier bar changed: redraw) or null (nothing
     * changed: a bar the server already closed cannot reopen, and a period before the history is not
     * kept).
     * @param {Bar} bar
     * @returns {'update' | 'append' | 'replace' | null}
     */
    apply(bar) {
        const bars = this.bars;
        const n = bars.length;
        if (!n || bar.ms > bars[n - 1].ms) {
            bars.push(bar);
            return 'append';
        }
        let lo = 0;
        let hi = n;
        while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (bars[mid].ms < bar.ms) lo = mid + 1;
            else hi = mid;
        }
        const kept = bars[lo];
        if (!kept || kept.ms !== bar.ms) {
            if (lo === 0) return null;
            bars.splice(lo, 0, bar); // a period missing inside the history, filled late
            return 'replace';
        }
        if (kept.closed && !bar.closed) return null;
        bars[lo] = bar;
        return lo === n - 1 ? 'update' : 'replace';
    }
}
