// @ts-check
/**
 * Legend Realtime dashboard — the price chart dialog (glue to price-chart.js): the prices kept per ticker
 * for it (recordPrice), opening and following it live, line or candles, colours from the page's theme.
 * An object of its own (the dashboard's `charts`): it gets its elements, the DOM writer, the frame batch,
 * a way to find a ticker's row, the exchange, and whether the page is gone; it keeps the chart, the
 * open ticker and the chart kind to itself.
 */
import { PriceChart } from '../price-chart.js';
import { exchangeZone, fmtChange, fmtMarketTime, fmtPercent, fmtPrice, num, parseTicker, zoneName } from './format.js';
import { KEYS, storage } from './storage.js';

/** @typedef {import('./dom.js').DomWriter} DomWriter */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */

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
     * @param {Record<string, any>} parts.dom chartDialog, chartCanvas, chartTitle, chartPrice, chartChange, chartNote, chartKinds
     * @param {DomWriter} parts.writer writes text
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies attributes once per frame
     * @param {(ticker: string) => any} parts.row the row state of a ticker on the page (its prices), or undefined
     * @param {() => string} parts.exchange the exchange calendar whose time the chart reads in
     * @param {() => boolean} parts.destroyed whether the page was destroyed
     */
    constructor({ dom, writer, frame, row, exchange, destroyed }) {
        this._dom = dom;
        this._writer = writer;
        this._frame = frame;
        this._row = row;
        this._exchange = exchange;
        this._destroyed = destroyed;
        /** @type {PriceChart | null} created when a chart is first opened */
        this.chart = null;
        /** @type {string | null} the ticker whose chart is open */
        this.ticker = null;
        /** @type {'line' | 'candles'} */
        this.kind = storage.get(KEYS.chartKind) === 'candles' ? 'candles' : 'line';
    }

    /**
     * Open the price chart of `ticker` (a row on the page): its prices so far (the stream's history
     * at subscribe, then every update), then live. Resolves once drawn; to false when it cannot be.
     * @param {unknown} raw
     */
    async open(raw) {
        const ticker = parseTicker(raw);
        const row = ticker && this._row(ticker);
        if (!row || this._destroyed()) return false;
        const d = this._dom;
        this.ticker = ticker;
        d.chartTitle.textContent = ticker;
        this._header(row);
        this._renderKind();
        if (!d.chartDialog.open) d.chartDialog.showModal();
        let lib;
        try {
            lib = await PriceChart.loadLibrary(document);
        } catch (err) {
            console.warn('realtime-dashboard: ' + err.message);
            d.chartNote.textContent = 'The chart cannot be shown: ' + err.message + '.';
            return false;
        }
        if (this._destroyed() || this.ticker !== ticker) return false;
        if (!this.chart) {
            const zone = exchangeZone(this._exchange());
            this.chart = new PriceChart(d.chartCanvas, {
                library: lib,
                timeZone: zone || Intl.DateTimeFormat().resolvedOptions().timeZone,
                zoneLabel: zoneName(zone, new Date()),
                colors: this._colors(),
            });
        }
        this._draw(row);
        return true;
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
        if (!(dialog && dialog.open)) this.ticker = null;
    }

    /**
     * 'line' or 'candles', remembered in this browser.
     * @param {unknown} kind
     */
    setKind(kind) {
        this.kind = kind === 'candles' ? 'candles' : 'line';
        storage.set(KEYS.chartKind, this.kind === 'candles' ? 'candles' : null);
        this._renderKind();
        const row = this.ticker && this._row(this.ticker);
        if (this.chart && row) {
            this.chart.setKind(this.kind);
            this._note(row);
        }
        return this.kind;
    }

    /** The page's theme changed (light or dark): recolour the chart. */
    themeChanged() {
        if (this.chart) this.chart.setColors(this._colors());
    }

    /**
     * A new price of `ticker` (`recorded`: what recordPrice did with it): follow it when its chart is open.
     * @param {string} ticker
     * @param {any} row
     * @param {string | null} recorded
     */
    onPrice(ticker, row, recorded) {
        if (this.ticker !== ticker) return;
        this._header(row);
        if (!this.chart || !recorded) return;
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
        if (this.chart) this.chart.destroy();
        this.chart = null;
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
        const n = row.times.length;
        const zone = exchangeZone(this._exchange());
        let text;
        if (!n) {
            text = 'Waiting for the first price of ' + row.ticker + '…';
        } else {
            text = n + (n === 1 ? ' price' : ' prices') + ' since ' + fmtMarketTime(new Date(row.times[0]), zone);
            if (this.kind === 'candles' && this.chart) text += ' · ' + PriceChart.intervalLabel(this.chart.interval) + ' candles';
            text += ' · live';
        }
        this._writer.write(this._dom.chartNote, text);
    }

    _renderKind() {
        for (const button of this._dom.chartKinds) {
            button.setAttribute('aria-pressed', button.dataset.kind === this.kind ? 'true' : 'false');
        }
    }

    /** The chart's colours from the page's theme (light or dark). */
    _colors() {
        const css = window.getComputedStyle(document.documentElement);
        const v = (name) => css.getPropertyValue(name).trim();
        return { text: v('--text-2'), grid: v('--border'), border: v('--border-strong'), up: v('--up'), down: v('--down'), muted: v('--muted') };
    }
}
