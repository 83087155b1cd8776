// @ts-check
/**
 * Legend Realtime dashboard — the price chart dialog (glue to price-chart.js): the prices kept per ticker
 * for it (recordPrice), opening and following it live, line or candles, colours from the page's theme.
 * Methods of RealtimeDashboard (dashboard.js installs them); their state: chart, chartTicker, chartKind.
 */
import { PriceChart } from '../price-chart.js';
import { exchangeZone, fmtChange, fmtMarketTime, fmtPercent, fmtPrice, num, parseTicker, zoneName } from './format.js';
import { KEYS, storage } from './storage.js';

/** @typedef {import('./types.js').Dashboard} Dashboard */

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

/** @satisfies {ThisType<Dashboard>} */
export const charts = {
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
            lib = await PriceChart.loadLibrary(document);
        } catch (err) {
            console.warn('realtime-dashboard: ' + err.message);
            d.chartNote.textContent = 'The chart cannot be shown: ' + err.message + '.';
            return false;
        }
        if (this.destroyed || this.chartTicker !== ticker) return false;
        if (!this.chart) {
            const zone = exchangeZone(this.status.exchange);
            this.chart = new PriceChart(d.chartCanvas, {
                library: lib,
                timeZone: zone || Intl.DateTimeFormat().resolvedOptions().timeZone,
                zoneLabel: zoneName(zone, new Date()),
                colors: this._chartColors(),
            });
        }
        this._drawChart(row);
        return true;
    },

    /** Close the chart (the dialog's own close event does the rest). */
    closeChart() {
        const dialog = this.dom && this.dom.chartDialog;
        if (dialog && dialog.open) dialog.close();
        this._chartClosed();
    },

    _chartClosed() {
        // The dialog's close event comes a task after close(): a chart opened again meanwhile stays.
        const dialog = this.dom && this.dom.chartDialog;
        if (!(dialog && dialog.open)) this.chartTicker = null;
    },

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
    },

    _drawChart(row) {
        this.chart.show({
            times: row.times,
            prices: row.prices,
            previousClose: num(row.last && row.last.previous_close),
            kind: this.chartKind,
        });
        this._chartNote(row);
    },

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
    },

    _chartHeader(row) {
        const d = this.dom;
        const last = row.last;
        this.writer.write(d.chartPrice, last ? last.price : null, fmtPrice);
        this.writer.write(d.chartChange, last ? fmtChange(last.change) + ' (' + fmtPercent(last.change_percent) + ')' : '');
        this.frame.set('chart-trend', () => {
            d.chartDialog.dataset.trend = row.trend;
        });
    },

    _chartNote(row) {
        const n = row.times.length;
        const zone = exchangeZone(this.status.exchange);
        let text;
        if (!n) {
            text = 'Waiting for the first price of ' + row.ticker + '…';
        } else {
            text = n + (n === 1 ? ' price' : ' prices') + ' since ' + fmtMarketTime(new Date(row.times[0]), zone);
            if (this.chartKind === 'candles' && this.chart) text += ' · ' + PriceChart.intervalLabel(this.chart.interval) + ' candles';
            text += ' · live';
        }
        this.writer.write(this.dom.chartNote, text);
    },

    _renderChartKind() {
        for (const button of this.dom.chartKinds) {
            button.setAttribute('aria-pressed', button.dataset.kind === this.chartKind ? 'true' : 'false');
        }
    },

    /** The chart's colours from the page's theme (light or dark). */
    _chartColors() {
        const css = window.getComputedStyle(document.documentElement);
        const v = (name) => css.getPropertyValue(name).trim();
        return { text: v('--text-2'), grid: v('--border'), border: v('--border-strong'), up: v('--up'), down: v('--down'), muted: v('--muted') };
    },
};
