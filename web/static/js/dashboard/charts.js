// @ts-check
/**
 * Legend Realtime dashboard — the price chart dialog (glue to price-chart.js). It opens on the ticker's
 * bars: the newest page of history (loadBars), older pages as the user scrolls back, then the live bar
 * (subscribeBars), at the interval chosen (1m 5m 15m 1h 1d, remembered in this browser). When the server
 * gives no history it says so and falls back on the prices the page has (recordPrice keeps them per
 * ticker), as a line or candles. It can mark instants on a ticker's chart (an alert rule's preview fires,
 * showMarkers) until the dialog closes. An object of its own (the dashboard's `charts`): it gets its elements,
 * the DOM writer, the frame batch, a way to find a ticker's row, the exchange, the two bar functions and
 * whether the page is gone; it keeps the chart, the open ticker, its bars and the choices to itself.
 */
import { PriceChart } from '../price-chart.js';
import { BarHistory, DEFAULT_INTERVAL, pageBars, parseBar, parseInterval } from './bars.js';
import { exchangeZone, fmtChange, fmtMarketTime, fmtPercent, fmtPrice, num, parseTicker, zoneName } from './format.js';
import { KEYS, storage } from './storage.js';

/** @typedef {import('./dom.js').DomWriter} DomWriter */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */
/** @typedef {import('./bars.js').BarInterval} BarInterval */
/**
 * The newest page of a ticker's bars (before: null) or the page before an instant (ISO-8601): resolves to
 * the REST answer {ticker, interval, bars}; rejects with an Error saying why.
 * @typedef {(ticker: string, interval: BarInterval, before: string | null) => Promise<any>} LoadBars
 */
/**
 * Follow the live bar of a ticker: `onBar` gets each bar message; returns the function that stops it,
 * or null when the page cannot follow bars.
 * @typedef {(ticker: string, interval: BarInterval, onBar: (msg: any) => void) => (() => void) | null} SubscribeBars
 */

/** Seconds per bar of each interval. */
const INTERVAL_SECONDS = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '1d': 86400 };

export const CHART_TICKS = 5000; // prices kept per ticker for its chart (one per second at most)
export const CHART_RESTART_MS = 3600000; // a price this much older than the newest: the series started again

/**
 * Keep a price for the chart in `row.times`/`row.prices` (ascending; the newest price of a second
 * replaces the one before it), at most CHART_TICKS. Returns 'append', 'replace' (same second as the
 * last), 'insert' (older than the last: the chart must be redrawn), 'reset' (far older: the series
 * started again, as a replay that loops; the kept prices were dropped) or null (nothing kept).
 */
export function recordPrice(row, ms, price) {
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

export class ChartDialog {
    /**
     * @param {object} parts
     * @param {Record<string, any>} parts.dom chartDialog, chartCanvas, chartTitle, chartPrice, chartChange, chartNote, chartKinds, chartIntervals
     * @param {DomWriter} parts.writer writes text
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies attributes once per frame
     * @param {(ticker: string) => any} parts.row the row state of a ticker on the page (its prices), or undefined
     * @param {() => string} parts.exchange the exchange calendar whose time the chart reads in
     * @param {LoadBars} parts.loadBars pages of a ticker's bars (GET /api/bars/{ticker})
     * @param {SubscribeBars} parts.subscribeBars the live bar (the bars channel)
     * @param {() => boolean} parts.destroyed whether the page was destroyed
     */
    constructor({ dom, writer, frame, row, exchange, loadBars, subscribeBars, destroyed }) {
        this._dom = dom;
        this._writer = writer;
        this._frame = frame;
        this._row = row;
        this._exchange = exchange;
        this._loadBars = loadBars;
        this._subscribeBars = subscribeBars;
        this._destroyed = destroyed;
        /** @type {PriceChart | null} created when a chart is first opened */
        this.chart = null;
        /** @type {string | null} the ticker whose chart is open */
        this.ticker = null;
        /** @type {'line' | 'candles'} how prices are drawn when there are no bars */
        this.kind = storage.get(KEYS.chartKind) === 'candles' ? 'candles' : 'line';
        /** @type {BarInterval} */
        this.interval = parseInterval(storage.get(KEYS.chartInterval)) || DEFAULT_INTERVAL;
        /** @type {'bars' | 'ticks' | null} what the open chart shows: bars, or the page's prices (no history) */
        this.mode = null;
        /** the open chart's bars */
        this.history = new BarHistory();
        /** @type {string | null} why there are no bars (the fallback on prices says it) */
        this.failure = null;
        this._live = false; // the live bar is followed
        this._stop = null; // stops following it
        this._pending = null; // live bars that came before the history page, or null once it is drawn
        this._older = null; // the older page being loaded
        this._complete = false; // history reaches no further back
        this._olderFailure = null;
        this._generation = 0; // what is loading for; bumped on every (re)load and close
        /** @type {{ticker: string, list: import('../price-chart.js').ChartMarker[], label: string} | null} marks on a ticker's chart */
        this.markers = null;
    }

    /**
     * Open the chart of `ticker` (a row on the page) with `list` marked on it (what an alert rule's preview
     * found: `label` names them in the chart's note, e.g. 'preview alerts'); they stay until the dialog
     * closes or another ticker's chart opens. Resolves as open().
     * @param {unknown} raw
     * @param {import('../price-chart.js').ChartMarker[]} list
     * @param {string} [label]
     */
    showMarkers(raw, list, label) {
        const ticker = parseTicker(raw);
        this.markers = ticker ? { ticker, list: list.slice(), label: label || 'marks' } : null;
        if (ticker && this.ticker === ticker && this.chart && this._dom.chartDialog.open) {
            this._applyMarkers();
            this._note(this._row(ticker));
            return Promise.resolve(true);
        }
        return this.open(ticker);
    }

    /** The marks of the open ticker (none for another's) onto the chart. */
    _applyMarkers() {
        if (!this.chart) return;
        const marks = this.markers && this.markers.ticker === this.ticker ? this.markers.list : [];
        this.chart.setMarkers(marks);
    }

    /**
     * Open the chart of `ticker` (a row on the page): its bars at the chosen interval, then live; without
     * history from the server, its prices so far (the stream's history at subscribe, then every update).
     * Resolves once drawn; to false when it cannot be.
     * @param {unknown} raw
     */
    async open(raw) {
        const ticker = parseTicker(raw);
        const row = ticker && this._row(ticker);
        if (!row || this._destroyed()) return false;
        const d = this._dom;
        this._stopBars();
        if (this.markers && this.markers.ticker !== ticker) this.markers = null;
        this.ticker = ticker;
        this.mode = null;
        d.chartTitle.textContent = ticker;
        this._header(row);
        this._renderControls();
        if (!d.chartDialog.open) d.chartDialog.showModal();
        const generation = this._generation;
        let lib;
        try {
            lib = await PriceChart.loadLibrary(document);
        } catch (err) {
            console.warn('realtime-dashboard: ' + err.message);
            d.chartNote.textContent = 'The chart cannot be shown: ' + err.message + '.';
            return false;
        }
        if (this._destroyed() || this._generation !== generation) return false;
        if (!this.chart) {
            const zone = exchangeZone(this._exchange());
            this.chart = new PriceChart(d.chartCanvas, {
                library: lib,
                timeZone: zone || Intl.DateTimeFormat().resolvedOptions().timeZone,
                zoneLabel: zoneName(zone, new Date()),
                colors: this._colors(),
            });
            this.chart.onScrollBack(() => this.loadOlder());
        }
        return this._loadBarsOf(ticker);
    }

    /** Close the chart (the dialog's own close event does the rest). */
    close() {
        const dialog = this._dom && this._dom.chartDialog;
        if (dialog && dialog.open) dialog.close();
        this.onDialogClosed();
    }

    /** The dialog's close event. */
    onDialogClosed() {
        // The dialog's close event comes a task after close(): a chart opened again meanwhile stays.
        const dialog = this._dom && this._dom.chartDialog;
        if (dialog && dialog.open) return;
        this.ticker = null;
        this.markers = null;
        if (this.chart) this.chart.setMarkers([]);
        this._stopBars();
    }

    /**
     * 'line' or 'candles' for the page's prices (when there are no bars), remembered in this browser.
     * @param {unknown} kind
     */
    setKind(kind) {
        this.kind = kind === 'candles' ? 'candles' : 'line';
        storage.set(KEYS.chartKind, this.kind === 'candles' ? 'candles' : null);
        this._renderControls();
        const row = this.ticker && this._row(this.ticker);
        if (this.chart && row && this.mode === 'ticks') {
            this.chart.setKind(this.kind);
            this._note(row);
        }
        return this.kind;
    }

    /**
     * The bar interval ('1m', '5m', '15m', '1h' or '1d'), remembered in this browser: the open chart
     * loads its bars again and follows the new interval's live bar instead. Resolves to the interval now
     * used; an unknown one is refused with an error.
     * @param {unknown} raw
     */
    async setInterval(raw) {
        const interval = parseInterval(raw);
        if (!interval) throw new Error('unknown chart interval ' + JSON.stringify(raw) + ': one of 1m, 5m, 15m, 1h, 1d');
        const changed = interval !== this.interval;
        this.interval = interval;
        storage.set(KEYS.chartInterval, interval === DEFAULT_INTERVAL ? null : interval);
        this._renderControls();
        if (changed && this.ticker && this.chart) {
            this._stopBars();
            await this._loadBarsOf(this.ticker);
        }
        return this.interval;
    }

    /**
     * Load the page of bars before the oldest shown (what scrolling to the left edge does): one page at a
     * time, none once history reaches no further. Resolves to the number of bars added.
     */
    async loadOlder() {
        const ticker = this.ticker;
        if (this.mode !== 'bars' || !ticker || this._complete || this._older || !this.history.bars.length) return 0;
        const generation = this._generation;
        const before = new Date(this.history.bars[0].ms).toISOString();
        this._older = this._loadBars(ticker, this.interval, before).then(pageBars);
        let page;
        try {
            page = await this._older;
        } catch (err) {
            if (generation !== this._generation) return 0;
            this._older = null;
            this._complete = true; // not asked again for this chart: reopening it tries again
            this._olderFailure = err.message;
            this._note(this._row(ticker));
            return 0;
        }
        if (generation !== this._generation) return 0;
        this._older = null;
        const added = this.history.prepend(page);
        if (!added) this._complete = true;
        this.chart.barsPrepended(added);
        this._note(this._row(ticker));
        return added;
    }

    /** The page's theme changed (light or dark): recolour the chart. */
    themeChanged() {
        if (this.chart) this.chart.setColors(this._colors());
    }

    /**
     * A new price of `ticker` (`recorded`: what recordPrice did with it): the header follows it, and
     * the chart too when it shows prices (with bars, the bars channel moves the chart).
     * @param {string} ticker
     * @param {any} row
     * @param {string | null} recorded
     */
    onPrice(ticker, row, recorded) {
        if (this.ticker !== ticker) return;
        this._header(row);
        if (!this.chart || !recorded || this.mode !== 'ticks') return;
        if (recorded === 'insert' || recorded === 'trim' || recorded === 'reset') {
            this._draw(row);
            return;
        }
        const n = row.times.length;
        this.chart.push(row.times[n - 1], row.prices[n - 1]);
        this._note(row);
    }

    /** Remove the chart (the page goes away). */
    destroy() {
        this._stopBars();
        if (this.chart) this.chart.destroy();
        this.chart = null;
    }

    /**
     * Follow the live bar, load the newest page, then draw it with the live bars that came meanwhile;
     * without history, draw the page's prices. Resolves to false when the chart was closed or moved on.
     * @param {string} ticker
     */
    async _loadBarsOf(ticker) {
        const generation = ++this._generation;
        const interval = this.interval;
        this.history = new BarHistory();
        this._pending = [];
        this._complete = false;
        this._olderFailure = null;
        this._writer.write(this._dom.chartNote, 'Loading ' + ticker + ' ' + interval + ' bars…');
        const stop = this._subscribeBars(ticker, interval, (msg) => this._onBar(generation, msg));
        this._stop = stop;
        this._live = !!stop;
        let page = null;
        try {
            page = pageBars(await this._loadBars(ticker, interval, null));
            this.failure = null;
        } catch (err) {
            if (generation !== this._generation) return false;
            this.failure = err.message;
        }
        if (generation !== this._generation || this._destroyed()) return false;
        const row = this._row(ticker);
        this._applyMarkers(); // drawn with the series
        if (!page) {
            this._stopBars(); // no history: the page's prices instead
            this.mode = 'ticks';
            this._renderControls();
            this._draw(row);
            return true;
        }
        this.history.reset(page);
        for (const bar of this._pending) this.history.apply(bar);
        this._pending = null;
        this.mode = 'bars';
        this._renderControls();
        this.chart.showBars({ bars: this.history.bars, seconds: INTERVAL_SECONDS[interval] });
        this._note(row);
        return true;
    }

    /** A message of the bars channel, for the load `generation`. */
    _onBar(generation, msg) {
        if (generation !== this._generation || !msg || msg.ticker !== this.ticker || msg.interval !== this.interval) return;
        const bar = parseBar(msg);
        if (!bar) {
            console.warn('realtime-dashboard: a malformed bar was ignored: ' + JSON.stringify(msg));
            return;
        }
        if (this._pending) {
            this._pending.push(bar); // the history page is not drawn yet
            return;
        }
        const change = this.history.apply(bar);
        if (!change) return;
        this.chart.updateBar(change);
        if (change === 'append') this._note(this._row(this.ticker));
    }

    /** Stop following the live bar and forget what is loading. */
    _stopBars() {
        this._generation++;
        const stop = this._stop;
        this._stop = null;
        this._live = false;
        this._pending = null;
        this._older = null;
        if (stop) stop();
    }

    _draw(row) {
        this.chart.show({
            times: row.times,
            prices: row.prices,
            previousClose: num(row.last && row.last.previous_close),
            kind: this.kind,
        });
        this._note(row);
    }

    _header(row) {
        const d = this._dom;
        const last = row.last;
        this._writer.write(d.chartPrice, last ? last.price : null, fmtPrice);
        this._writer.write(d.chartChange, last ? fmtChange(last.change) + ' (' + fmtPercent(last.change_percent) + ')' : '');
        this._frame.set('chart-trend', () => {
            d.chartDialog.dataset.trend = row.trend;
        });
    }

    _note(row) {
        const zone = exchangeZone(this._exchange());
        const parts = [];
        if (this.mode === 'bars') {
            const bars = this.history.bars;
            if (!bars.length) parts.push('No ' + this.interval + ' bars of ' + this.ticker + ' yet');
            else parts.push(bars.length + ' × ' + this.interval + (bars.length === 1 ? ' bar' : ' bars') + ' since ' + fmtMarketTime(new Date(bars[0].ms), zone));
            if (this._olderFailure) parts.push('older bars could not be loaded: ' + this._olderFailure);
            else if (this._complete && bars.length) parts.push('the start of its history');
            parts.push(this._live ? 'live' : 'not live (no bars channel)');
            this._noteMarkers(parts, bars.length ? bars[0].ms : null);
        } else {
            if (this.failure) parts.push('No history from the server (' + this.failure + ')');
            const n = row ? row.times.length : 0;
            if (!n) {
                parts.push('Waiting for the first price of ' + this.ticker + '…');
            } else {
                let text = n + (n === 1 ? ' price' : ' prices') + ' since ' + fmtMarketTime(new Date(row.times[0]), zone);
                if (this.kind === 'candles' && this.chart) text += ' · ' + PriceChart.intervalLabel(this.chart.interval) + ' candles';
                parts.push(text, 'live');
            }
            this._noteMarkers(parts, n ? row.times[0] : null);
        }
        this._writer.write(this._dom.chartNote, parts.join(' · '));
    }

    /** How many marks the chart has, and how many lie before what it shows (`first`: its first instant). */
    _noteMarkers(parts, first) {
        const marks = this.markers && this.markers.ticker === this.ticker ? this.markers.list : null;
        if (!marks) return;
        const earlier = first === null ? marks.length : marks.filter((m) => m.ms < first).length;
        let text = marks.length + ' ' + this.markers.label + ' marked';
        if (earlier) text += ' (' + earlier + ' before these ' + (this.mode === 'bars' ? 'bars: scroll back' : 'prices') + ')';
        parts.push(text);
    }

    /** The interval buttons with bars, the line/candles buttons with prices; each shows the choice. */
    _renderControls() {
        const d = this._dom;
        for (const button of d.chartKinds) {
            button.setAttribute('aria-pressed', button.dataset.kind === this.kind ? 'true' : 'false');
        }
        for (const button of d.chartIntervals) {
            button.setAttribute('aria-pressed', button.dataset.interval === this.interval ? 'true' : 'false');
        }
        d.chartKindGroup.hidden = this.mode !== 'ticks';
        d.chartIntervalGroup.hidden = this.mode === 'ticks';
    }

    /** The chart's colours from the page's theme (light or dark). */
    _colors() {
        const css = window.getComputedStyle(document.documentElement);
        const v = (name) => css.getPropertyValue(name).trim();
        return { text: v('--text-2'), grid: v('--border'), border: v('--border-strong'), up: v('--up'), down: v('--down'), muted: v('--muted'), marker: v('--warn') };
    }
}
