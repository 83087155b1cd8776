// @ts-check
/**
 * Legend Realtime — the dashboard's price chart: one ticker's bars (candles over a volume pane) or its
 * prices (a line or candles built here), in the exchange's time, drawn by TradingView Lightweight Charts™
 * (vendored beside this file as lightweight-charts.standalone.production.js, see
 * LICENSE-lightweight-charts / NOTICE-lightweight-charts; loaded on first use, from this server only).
 *
 *   const chart = new PriceChart(element, { timeZone: 'America/New_York', zoneLabel: 'ET' });
 *   chart.showBars({ bars, seconds: 60 });                        // bars: [{ms, open, high, low, close, volume}]
 *   bars.push(bar); chart.updateBar('append');                   // after changing `bars` in place
 *   chart.onScrollBack(() => loadOlder());                       // the user reached the left edge
 *   chart.show({ times, prices, previousClose, kind: 'line' });   // or prices: epoch ms, ascending
 *   chart.push(Date.now(), 151.2);                               // a live price
 *   chart.setKind('candles');
 *   chart.destroy();
 *
 * The chart library reads every timestamp as UTC and labels it as such, so times are shifted by the
 * exchange's UTC offset at that instant (zonedSeconds): the axis then reads in exchange time, across
 * daylight saving changes, whatever the browser's own time zone; the crosshair adds the browser's own time
 * with its zone's name when that is another zone. Candles are built here from the prices (toCandles), with
 * an interval chosen from how dense and how long the series is (candleInterval).
 *
 * An ES module: the dashboard imports it (and defines `window.PriceChart`). Pure helpers are static
 * properties (PriceChart.zonedSeconds, .linePoints, .candleInterval, .toCandles) and named exports, for
 * node --test (tests/js/price-chart.test.js).
 */

const LIBRARY_URL = '/static/js/lightweight-charts.standalone.production.js';
/** Candle widths offered, in seconds: the smallest that fits is used. */
const INTERVALS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
const MAX_CANDLES = 150; // more would be too thin to read
const PRICES_PER_CANDLE = 4; // fewer makes flat candles (open = close)
const HOUR_MS = 3600000;
const SECONDS_VISIBLE_BELOW = 1800; // a series shorter than this (s) shows seconds on its time axis
const BARS_VISIBLE = 120; // bars shown when a longer history opens (the rest is a scroll away)
const SCROLL_BACK_BARS = 10; // this close to the oldest bar, ask for older ones
const VOLUME_PANE_STRETCH = 0.3; // the volume pane's height against the candles' (1)
const DAY = 86400;

// ───────────────────────────── time zones ─────────────────────────────

const partsFormats = new Map();
const offsets = new Map(); // zone|hour -> offset ms (offsets change on hour boundaries at most)

function partsFormat(timeZone) {
    let f = partsFormats.get(timeZone);
    if (!f) {
        f = new Intl.DateTimeFormat('en-US', {
            timeZone: timeZone, hourCycle: 'h23',
            year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
        });
        partsFormats.set(timeZone, f);
    }
    return f;
}

/** The UTC offset of `timeZone` at the instant `ms` (epoch ms), in ms: -4 h for New York in summer. */
export function zoneOffset(ms, timeZone) {
    if (!timeZone || timeZone === 'UTC') return 0;
    const key = timeZone + '|' + Math.floor(ms / HOUR_MS);
    let offset = offsets.get(key);
    if (offset === undefined) {
        const p = {};
        for (const part of partsFormat(timeZone).formatToParts(new Date(ms))) p[part.type] = Number(part.value);
        const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
        offset = wall - (ms - (((ms % 1000) + 1000) % 1000));
        if (offsets.size > 10000) offsets.clear();
        offsets.set(key, offset);
    }
    return offset;
}

/** Seconds whose reading as UTC is the wall-clock time in `timeZone` at `ms`: what the chart shows. */
export function zonedSeconds(ms, timeZone) {
    return Math.floor((ms + zoneOffset(ms, timeZone)) / 1000);
}

/** The instant (epoch ms) whose wall-clock time in `timeZone` is `seconds` read as UTC: zonedSeconds undone. */
export function zonedInstant(seconds, timeZone) {
    const wall = seconds * 1000;
    return wall - zoneOffset(wall - zoneOffset(wall, timeZone), timeZone);
}

// ───────────────────────────── series ─────────────────────────────

/** Line points [{time, value}], one per second (the last price of a second wins), ascending. */
export function linePoints(times, prices, timeZone) {
    const out = [];
    for (let i = 0; i < times.length; i++) {
        const time = zonedSeconds(times[i], timeZone);
        const last = out[out.length - 1];
        if (last && time <= last.time) {
            if (time === last.time) last.value = prices[i];
            continue; // out of order: the caller keeps times ascending
        }
        out.push({ time: time, value: prices[i] });
    }
    return out;
}

/** The median gap between consecutive times (ms), or null with fewer than two. */
function medianGap(times) {
    const gaps = [];
    for (let i = 1; i < times.length; i++) {
        const gap = times[i] - times[i - 1];
        if (gap > 0) gaps.push(gap);
    }
    if (!gaps.length) return null;
    gaps.sort((a, b) => a - b);
    return gaps[Math.floor(gaps.length / 2)];
}

/**
 * Candle width in seconds: wide enough to hold a few prices each (at the series' usual spacing) and
 * to keep the whole span within MAX_CANDLES candles; 60 s when there is too little to tell.
 */
export function candleInterval(times) {
    if (times.length < 2) return 60;
    const gap = medianGap(times);
    const span = (times[times.length - 1] - times[0]) / 1000;
    const need = Math.max(gap === null ? 60 : (gap / 1000) * PRICES_PER_CANDLE, span / MAX_CANDLES);
    for (const interval of INTERVALS) {
        if (interval >= need) return interval;
    }
    return INTERVALS[INTERVALS.length - 1];
}

/** Candles [{time, open, high, low, close}] of `interval` seconds, aligned in exchange time. */
export function toCandles(times, prices, interval, timeZone) {
    const out = [];
    for (let i = 0; i < times.length; i++) {
        const s = zonedSeconds(times[i], timeZone);
        const time = s - (((s % interval) + interval) % interval);
        mergeCandle(out, time, prices[i]);
    }
    return out;
}

/** Add a price to the last candle when it falls in it, else start a new one; returns the candle. */
function mergeCandle(candles, time, price) {
    const last = candles[candles.length - 1];
    if (last && time === last.time) {
        last.high = Math.max(last.high, price);
        last.low = Math.min(last.low, price);
        last.close = price;
        return last;
    }
    if (last && time < last.time) return null; // out of order
    const candle = { time: time, open: price, high: price, low: price, close: price };
    candles.push(candle);
    return candle;
}

/**
 * Bars ({ms, open, high, low, close, volume}, ascending) as the chart's candles and volume histogram, in
 * exchange time; a volume is coloured as its candle (`up` when it closed at or above its open).
 */
export function barPoints(bars, timeZone, colors) {
    const candles = [];
    const volumes = [];
    for (const bar of bars) {
        const point = barPoint(bar, timeZone, colors);
        candles.push(point.candle);
        volumes.push(point.volume);
    }
    return { candles, volumes };
}

function barPoint(bar, timeZone, colors) {
    const time = zonedSeconds(bar.ms, timeZone);
    return {
        candle: { time: time, open: bar.open, high: bar.high, low: bar.low, close: bar.close },
        volume: { time: time, value: bar.volume, color: withAlpha(bar.close >= bar.open ? colors.up : colors.down, 0.45) },
    };
}

/** "5s", "1m", "2h": a candle width for people. */
export function intervalLabel(seconds) {
    if (seconds < 60) return seconds + 's';
    if (seconds < 3600) return seconds / 60 + 'm';
    if (seconds >= DAY && seconds % DAY === 0) return seconds / DAY + 'D';
    return seconds / 3600 + 'h';
}

// ───────────────────────────── the library ─────────────────────────────

let libraryPromise = null;

/** Load the vendored chart library once (a <script> tag); resolves with its global. */
export function loadLibrary(doc, url) {
    const g = typeof globalThis !== 'undefined' ? globalThis : {};
    if (g.LightweightCharts) return Promise.resolve(g.LightweightCharts);
    if (libraryPromise) return libraryPromise;
    libraryPromise = new Promise((resolve, reject) => {
        const script = doc.createElement('script');
        script.src = url || LIBRARY_URL;
        script.async = true;
        script.onload = () => (g.LightweightCharts ? resolve(g.LightweightCharts) : reject(new Error('the chart library did not load')));
        script.onerror = () => reject(new Error('the chart library could not be loaded from ' + script.src));
        doc.head.appendChild(script);
    }).catch((err) => {
        libraryPromise = null; // try again next time
        throw err;
    });
    return libraryPromise;
}

// ───────────────────────────── the chart ─────────────────────────────

/** @typedef {{text: string, grid: string, border: string, up: string, down: string, muted: string, marker: string}} ChartColors */
/**
 * A mark on the chart (an alert's preview fire): at the bar (or point) that holds `ms`, pointing at `price`.
 * @typedef {{ms: number, price?: number | null, text?: string}} ChartMarker
 */

export class PriceChart {
    /**
     * @param {HTMLElement} container where the chart goes (sized by CSS; the chart follows its size)
     * @param {{library: any, timeZone?: string, zoneLabel?: string, localZone?: string, colors?: Partial<ChartColors>, locale?: string}} options
     *     `library` (LightweightCharts), `timeZone` (IANA, default America/New_York), `zoneLabel` (e.g.
     *     'ET', shown in the crosshair label), `localZone` (the browser's zone by default: its time is added
     *     to the crosshair label when it is not `timeZone`), `colors` ({text, grid, border, up, down,
     *     muted}), `locale`
     */
    constructor(container, options) {
        const opts = options || /** @type {typeof options} */ ({});
        this.lib = opts.library;
        this.timeZone = opts.timeZone || 'America/New_York';
        this.zoneLabel = opts.zoneLabel || '';
        this.colors = Object.assign({ text: '#3b475c', grid: '#e2e7ef', border: '#cfd7e3', up: '#0b8a4f', down: '#d12f3a', muted: '#6a7589', marker: '#b56a00' }, opts.colors || {});
        this.localZone = opts.localZone || Intl.DateTimeFormat().resolvedOptions().timeZone;
        /** 'bars' (showBars) or 'ticks' (show) */
        this.mode = 'ticks';
        this.kind = 'line';
        this.interval = 60;
        /** @type {{ms: number, open: number, high: number, low: number, close: number, volume: number}[]} the bars shown (the caller's array) */
        this.bars = [];
        this.barSeconds = 60;
        this.volume = null; // the volume histogram (bars only)
        this._scrollBack = null;
        this.times = [];
        this.prices = [];
        this.previousClose = null;
        this.series = null;
        this._priceLine = null;
        this._candles = [];
        this._lastLineTime = null;
        this._trend = null;
        /** @type {ChartMarker[]} the marks drawn over the series (setMarkers), kept across redraws */
        this.markers = [];
        this._markerPlugin = null;

        const shifted = (options) => new Intl.DateTimeFormat(opts.locale, Object.assign({ timeZone: 'UTC' }, options));
        this._formats = {
            second: shifted({ month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit' }),
            minute: shifted({ month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' }),
            day: shifted({ weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' }),
            local: new Intl.DateTimeFormat(opts.locale, { timeZone: this.localZone, hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }),
        };
        this.chart = this.lib.createChart(container, {
            autoSize: true,
            layout: { background: { type: 'solid', color: 'transparent' }, textColor: this.colors.text, fontSize: 12 },
            grid: { vertLines: { color: this.colors.grid }, horzLines: { color: this.colors.grid } },
            rightPriceScale: { borderColor: this.colors.border },
            timeScale: { borderColor: this.colors.border, timeVisible: true, secondsVisible: false, rightOffset: 1 },
            localization: {
                locale: opts.locale,
                timeFormatter: (time) => this.timeLabel(time),
            },
        });
        this.chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
            if (range && this.mode === 'bars' && this._scrollBack && range.from < SCROLL_BACK_BARS) this._scrollBack();
        });
    }

    /**
     * The crosshair's time: shifted seconds read as UTC are the exchange's wall-clock time ("Jan 15,
     * 9:30 AM ET"), followed by the browser's own time when it is another zone ("· 11:30 PM GMT+9");
     * a daily bar is its date.
     */
    timeLabel(time) {
        if (typeof time !== 'number') return String(time);
        const date = new Date(time * 1000);
        if (this.mode === 'bars' && this.barSeconds >= DAY) return this._formats.day.format(date);
        const exchange = (this.mode === 'bars' ? this._formats.minute : this._formats.second).format(date);
        const text = exchange + (this.zoneLabel ? ' ' + this.zoneLabel : '');
        if (this.localZone === this.timeZone) return text;
        return text + ' · ' + this._formats.local.format(new Date(zonedInstant(time, this.timeZone)));
    }

    /**
     * Draw bars: `bars` ({ms, open, high, low, close, volume}, ascending; the chart keeps this array and
     * reads it again on updateBar and barsPrepended) of `seconds` each, as candles over a volume pane.
     */
    showBars(data) {
        this.mode = 'bars';
        this.bars = data.bars;
        this.barSeconds = data.seconds;
        this.previousClose = typeof data.previousClose === 'number' ? data.previousClose : null;
        this.chart.applyOptions({ timeScale: { timeVisible: this.barSeconds < DAY, secondsVisible: false } });
        this._build();
        const n = this.bars.length;
        if (n > BARS_VISIBLE) this.chart.timeScale().setVisibleLogicalRange({ from: n - BARS_VISIBLE, to: n + 1 });
        else this.chart.timeScale().fitContent();
    }

    /**
     * The caller changed its bars (BarHistory.apply): 'update' (the last bar), 'append' (a new last bar)
     * or 'replace' (an earlier one: redrawn).
     */
    updateBar(change) {
        if (this.mode !== 'bars' || !this.series || !this.bars.length) return;
        if (change === 'replace') {
            this._setBars();
            return;
        }
        const point = barPoint(this.bars[this.bars.length - 1], this.timeZone, this.colors);
        this.series.update(point.candle);
        this.volume.update(point.volume);
    }

    /** `added` older bars were put in front of the caller's bars: draw them, the view staying where it was. */
    barsPrepended(added) {
        if (this.mode !== 'bars' || !this.series || !added) return;
        const scale = this.chart.timeScale();
        const range = scale.getVisibleLogicalRange();
        this._setBars();
        if (range) scale.setVisibleLogicalRange({ from: range.from + added, to: range.to + added });
    }

    /** Call `fn` when the user scrolls bars to the left edge (null: stop). */
    onScrollBack(fn) {
        this._scrollBack = fn || null;
    }

    /** Draw a new series: `times` (epoch ms, ascending) and `prices` of the same length. */
    show(data) {
        this.mode = 'ticks';
        this.times = data.times || [];
        this.prices = data.prices || [];
        this.previousClose = typeof data.previousClose === 'number' ? data.previousClose : null;
        if (data.kind) this.kind = data.kind === 'candles' ? 'candles' : 'line';
        const n = this.times.length;
        const span = n > 1 ? (this.times[n - 1] - this.times[0]) / 1000 : 0;
        this.chart.applyOptions({ timeScale: { timeVisible: true, secondsVisible: span < SECONDS_VISIBLE_BELOW } });
        this._build();
        this.chart.timeScale().fitContent();
    }

    /** Line or candles, redrawn from the same prices (bars are always candles). */
    setKind(kind) {
        const next = kind === 'candles' ? 'candles' : 'line';
        if (next === this.kind && this.series) return;
        this.kind = next;
        if (this.mode === 'bars') return;
        this._build();
        this.chart.timeScale().fitContent();
    }

    /** A live price (the caller has appended it to its arrays already, or passes it here only). */
    push(ms, price) {
        if (!this.series || this.mode === 'bars') return;
        if (this.kind === 'line') {
            const time = zonedSeconds(ms, this.timeZone);
            if (this._lastLineTime !== null && time < this._lastLineTime) return this._build();
            this._lastLineTime = time;
            this.series.update({ time: time, value: price });
            this._applyTrend(price);
            return;
        }
        const s = zonedSeconds(ms, this.timeZone);
        const time = s - (((s % this.interval) + this.interval) % this.interval);
        const candle = mergeCandle(this._candles, time, price);
        if (!candle) return this._build();
        this.series.update(Object.assign({}, candle));
    }

    /** Follow a new colour scheme. */
    setColors(colors) {
        Object.assign(this.colors, colors || {});
        const c = this.colors;
        this.chart.applyOptions({
            layout: { textColor: c.text },
            grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
            rightPriceScale: { borderColor: c.border },
            timeScale: { borderColor: c.border },
        });
        this._trend = null;
        this._build();
    }

    /**
     * Mark instants on the chart (an empty list removes the marks): each at the bar or point that holds
     * it, kept across redraws and drawn as older bars arrive; one before the first bar or after the last
     * is not drawn (the library would put it on the nearest one, a bar where nothing happened).
     * @param {ChartMarker[]} markers
     */
    setMarkers(markers) {
        this.markers = (markers || []).filter((m) => m && Number.isFinite(m.ms)).slice().sort((a, b) => a.ms - b.ms);
        this._applyMarkers();
    }

    /** How many marks are drawn now (those within the series shown). */
    get markersShown() {
        return this._markerPlugin ? this._markerPlugin.markers().length : 0;
    }

    _applyMarkers() {
        if (!this.series) return;
        const drawn = this._markerPoints();
        if (!this._markerPlugin) {
            if (!drawn.length || typeof this.lib.createSeriesMarkers !== 'function') return;
            this._markerPlugin = this.lib.createSeriesMarkers(this.series, drawn);
            return;
        }
        this._markerPlugin.setMarkers(drawn);
    }

    /** The library's markers of `this.markers`: each at the time of the series point that holds it. */
    _markerPoints() {
        const data = this.series.data();
        const n = data.length;
        if (!n || !this.markers.length) return [];
        const last = data[n - 1].time;
        const span = this.mode === 'bars' ? this.barSeconds : this.kind === 'candles' ? this.interval : 1;
        const out = [];
        for (const marker of this.markers) {
            const time = zonedSeconds(marker.ms, this.timeZone);
            if (time < data[0].time || time >= last + span) continue;
            let lo = 0;
            let hi = n - 1;
            while (lo < hi) { // the last point at or before the mark
                const mid = (lo + hi + 1) >> 1;
                if (data[mid].time <= time) lo = mid;
                else hi = mid - 1;
            }
            const priced = typeof marker.price === 'number' && Number.isFinite(marker.price);
            out.push({
                time: data[lo].time,
                position: priced ? 'atPriceTop' : 'aboveBar',
                price: priced ? marker.price : undefined,
                shape: 'arrowDown',
                color: this.colors.marker,
                text: marker.text || '',
            });
        }
        return out;
    }

    destroy() {
        if (!this.chart) return;
        this._markerPlugin = null;
        this.chart.remove();
        this.chart = null;
        this.series = null;
        this.volume = null;
        this._scrollBack = null;
    }

    _priceFormat() {
        const last = this.mode === 'bars'
            ? (this.bars.length ? this.bars[this.bars.length - 1].close : null)
            : (this.prices.length ? this.prices[this.prices.length - 1] : null);
        let reference = last === null ? 1 : Math.abs(last);
        if (this.previousClose !== null) reference = Math.min(reference, Math.abs(this.previousClose));
        return reference < 1 ? { type: 'price', precision: 4, minMove: 0.0001 } : { type: 'price', precision: 2, minMove: 0.01 };
    }

    _build() {
        const lib = this.lib;
        if (this._markerPlugin) this._markerPlugin.detach();
        this._markerPlugin = null;
        if (this.series) this.chart.removeSeries(this.series);
        if (this.volume) this.chart.removeSeries(this.volume);
        this.series = null;
        this.volume = null;
        this._priceLine = null;
        this._trend = null;
        const c = this.colors;
        const candleOptions = {
            upColor: c.up, downColor: c.down, borderVisible: false, wickUpColor: c.up, wickDownColor: c.down,
            priceFormat: this._priceFormat(),
        };
        if (this.mode === 'bars') {
            this.series = this.chart.addSeries(lib.CandlestickSeries, candleOptions, 0);
            this.volume = this.chart.addSeries(lib.HistogramSeries, {
                priceFormat: { type: 'volume' }, priceLineVisible: false, lastValueVisible: false,
            }, 1);
            const pane = this.chart.panes()[1];
            if (pane) pane.setStretchFactor(VOLUME_PANE_STRETCH);
            this._setBars();
            this._candles = [];
            this._lastLineTime = null;
        } else if (this.kind === 'candles') {
            this.interval = candleInterval(this.times);
            this._candles = toCandles(this.times, this.prices, this.interval, this.timeZone);
            this.series = this.chart.addSeries(lib.CandlestickSeries, candleOptions);
            this.series.setData(this._candles.map((k) => Object.assign({}, k)));
            this._lastLineTime = null;
        } else {
            const points = linePoints(this.times, this.prices, this.timeZone);
            this.series = this.chart.addSeries(lib.AreaSeries, {
                lineWidth: 2, priceFormat: this._priceFormat(), priceLineVisible: true,
            });
            this.series.setData(points);
            this._lastLineTime = points.length ? points[points.length - 1].time : null;
            this._candles = [];
            if (points.length) this._applyTrend(points[points.length - 1].value);
        }
        if (this.previousClose !== null) {
            this._priceLine = this.series.createPriceLine({
                price: this.previousClose, color: c.muted, lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: 'prev close',
            });
        }
        this._applyMarkers();
    }

    _setBars() {
        const points = barPoints(this.bars, this.timeZone, this.colors);
        this.series.setData(points.candles);
        this.volume.setData(points.volumes);
        this._applyMarkers();
    }

    /** The line is green above the previous close, red below (as the table's trend). */
    _applyTrend(price) {
        if (this.kind !== 'line' || !this.series) return;
        const base = this.previousClose !== null ? this.previousClose : this.prices.length ? this.prices[0] : price;
        const trend = price >= base ? 'up' : 'down';
        if (trend === this._trend) return;
        this._trend = trend;
        const color = trend === 'up' ? this.colors.up : this.colors.down;
        this.series.applyOptions({ lineColor: color, topColor: withAlpha(color, 0.28), bottomColor: withAlpha(color, 0.02) });
    }

    static LIBRARY_URL = LIBRARY_URL;
    static loadLibrary = loadLibrary;
    static zoneOffset = zoneOffset;
    static zonedSeconds = zonedSeconds;
    static zonedInstant = zonedInstant;
    static barPoints = barPoints;
    static linePoints = linePoints;
    static candleInterval = candleInterval;
    static toCandles = toCandles;
    static intervalLabel = intervalLabel;
}

/** `#rrggbb` with an alpha, as rgba(); other colour syntaxes are returned unchanged. */
function withAlpha(color, alpha) {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(String(color).trim());
    if (!m) return color;
    return 'rgba(' + parseInt(m[1], 16) + ', ' + parseInt(m[2], 16) + ', ' + parseInt(m[3], 16) + ', ' + alpha + ')';
}
