// @ts-check
/**
 * Legend Realtime dashboard — the watchlist: one table row per ticker (price, change, volume, sparkline,
 * day range, the latest pattern's chip, the server's note), kept on the server (GET/POST/DELETE /api/watchlist) or, when
 * that API answers 404, in this browser.
 * An object of its own (the dashboard's `watchlist`): it gets the REST client, the WebSocketClient (to
 * subscribe to a row's prices), its elements, the DOM writer, the frame batch, the chart dialog (which
 * follows a row's prices), how to show an error, whose list it is and whether the page is gone; it
 * keeps the rows, the saved tickers, where they are kept (mode) and the pattern chips.
 */
import { recordPrice } from './charts.js';
import { el } from './dom.js';
import { fmtChange, fmtPercent, fmtPrice, fmtVolume, num, parseTicker, parseTime } from './format.js';
import { errorText } from './rest.js';
import { KEYS, storage } from './storage.js';

/** @typedef {import('./rest.js').Api} Api */
/** @typedef {import('./dom.js').DomWriter} DomWriter */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */
/** @typedef {import('./charts.js').ChartDialog} ChartDialog */
/** @typedef {import('./types.js').Row} Row */
/** @typedef {import('./types.js').PatternChip} PatternChip */

export const DEFAULT_TICKERS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'SPY'];
export const QUICK_ADD = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'TSLA', 'SPY'];

export const CHART_POINTS = 90; // per ticker
export const MAX_PATTERN_CHIPS = 200;

export class Watchlist {
    /**
     * @param {object} parts
     * @param {Pick<Api, 'get' | 'post' | 'del'>} parts.api the REST client
     * @param {{subscribe: (channel: string, ticker: string) => unknown, unsubscribe: (channel: string, ticker: string) => unknown}} parts.client
     *     the WebSocketClient: a row's prices come from its ticker channel
     * @param {Record<string, any>} parts.dom rows, rowTemplate, table, count, empty, quickAdd, ruleTickers, watchInput, watchNote, watchError
     * @param {Pick<DomWriter, 'write' | 'forgetWithin'>} parts.writer writes text
     * @param {Pick<FrameBatch, 'set' | 'delete'>} parts.frame applies classes, attributes and charts once per frame
     * @param {Pick<ChartDialog, 'ticker' | 'onPrice' | 'close'>} parts.chart the price chart dialog: follows a row's prices
     * @param {(node: any, text: string | null) => void} parts.showError shows (null: hides) a form's error
     * @param {() => string} parts.userId whose list this browser keeps when the server does not
     * @param {() => boolean} parts.destroyed whether the page was destroyed (answers arriving later are ignored)
     */
    constructor({ api, client, dom, writer, frame, chart, showError, userId, destroyed }) {
        this._api = api;
        this._client = client;
        this._dom = dom;
        this._writer = writer;
        this._frame = frame;
        this._chart = chart;
        this._showError = showError;
        this._userId = userId;
        this._destroyed = destroyed;
        /** @type {Map<string, Row>} ticker -> row state; the only place rows come from */
        this.rows = new Map();
        /** @type {Set<string>} tickers saved in the user's watchlist */
        this.saved = new Set();
        /** @type {'loading' | 'server' | 'local' | 'degraded'} where the list is kept */
        this.mode = 'loading';
        /** @type {Map<string, PatternChip>} ticker -> latest pattern chip, at most MAX_PATTERN_CHIPS */
        this.patterns = new Map();
    }

    /**
     * The row state of `ticker`, or undefined.
     * @param {string} ticker
     */
    row(ticker) {
        return this.rows.get(ticker);
    }

    /** Show a live row for `ticker` and subscribe to its prices. Returns the ticker, or null if invalid. */
    subscribe(raw) {
        const ticker = parseTicker(raw);
        if (!ticker || this._destroyed()) return null;
        if (!this.rows.has(ticker)) {
            this.rows.set(ticker, this._createRow(ticker));
            this._paintChip(ticker);
            this.renderEmpty();
        }
        this._client.subscribe('ticker', ticker);
        return ticker;
    }

    /** Remove the row of `ticker` and unsubscribe from its prices. */
    unsubscribe(raw) {
        const ticker = parseTicker(raw);
        if (!ticker) return false;
        const row = this.rows.get(ticker);
        if (row) {
            if (this._chart.ticker === ticker) this._chart.close();
            this.rows.delete(ticker);
            this._frame.delete(row);
            row.el.remove();
            this._writer.forgetWithin(row.el); // its cells must not stay in the client's change cache
            this.renderEmpty();
        }
        this._client.unsubscribe('ticker', ticker);
        return !!row;
    }

    _createRow(ticker) {
        const el = this._dom.rowTemplate.content.firstElementChild.cloneNode(true);
        el.dataset.ticker = ticker;
        const q = (sel) => el.querySelector(sel);
        q('.sym').textContent = ticker;
        q('.sym').title = 'Open the ' + ticker + ' chart';
        q('.remove').setAttribute('aria-label', 'Remove ' + ticker + ' from the watchlist');
        q('.remove').title = 'Remove ' + ticker;
        /** @type {Row} */
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
                note: q('.row-note'),
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
        this._dom.rows.appendChild(el);
        return row;
    }

    /**
     * The server acknowledged a subscription: show its `note` on the ticker's row (e.g. that the prices
     * are simulated, or made up for a symbol the simulation does not know); none hides it.
     * @param {{channel?: unknown, ticker?: unknown, action?: unknown, note?: unknown}} msg
     */
    onSubscription(msg) {
        if (!msg || msg.channel !== 'ticker' || msg.action !== 'subscribed') return;
        const ticker = parseTicker(msg.ticker);
        const row = ticker && this.rows.get(ticker);
        if (!row) return;
        const note = typeof msg.note === 'string' && msg.note ? msg.note : '';
        this._frame.set(ticker + ':note', () => {
            const node = row.cells.note;
            node.hidden = !note;
            node.textContent = note;
            node.title = note;
        });
    }

    /**
     * A price_update: its row's cells, sparkline and range, and the chart when it is open on it.
     * @param {any} msg
     * @param {{replayed?: boolean}} [info] replayed: from history (no flash)
     */
    onPrice(msg, info) {
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

        const c = row.cells;
        this._writer.write(c.price, price, fmtPrice);
        this._writer.write(c.chg, msg.change, fmtChange);
        this._writer.write(c.pct, msg.change_percent, fmtPercent);
        this._writer.write(c.vol, msg.volume, fmtVolume);
        this._writer.write(c.lo, msg.low, fmtPrice);
        this._writer.write(c.hi, msg.high, fmtPrice);

        const change = num(msg.change) || 0;
        row.trend = change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
        if (!info || !info.replayed) {
            const before = previous ? num(previous.price) : null;
            if (before !== null && before !== price) row.flash = price > before ? 'up' : 'down';
        }
        this._frame.set(row, () => this._paintRow(row));
        this._chart.onPrice(ticker, row, recorded);
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

    /** The count, the empty state and its quick-add buttons, and the rule form's ticker suggestions. */
    renderEmpty() {
        this._frame.set('empty', () => {
            const d = this._dom;
            const count = this.rows.size;
            const loading = this.mode === 'loading';
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

    /**
     * Placeholder rows while the list loads (on), then the empty state (off).
     * @param {boolean} on
     */
    setLoading(on) {
        this._frame.set('loading', () => {
            const rows = this._dom.rows;
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
        if (!on) this.renderEmpty();
    }

    _localList() {
        const raw = storage.get(KEYS.watchlist(this._userId()));
        if (raw === null) return null;
        try {
            const list = JSON.parse(raw);
            return Array.isArray(list) ? list.map(parseTicker).filter(Boolean) : null;
        } catch (_) {
            return null;
        }
    }

    _saveLocal() {
        storage.set(KEYS.watchlist(this._userId()), JSON.stringify(Array.from(this.saved)));
    }

    _setMode(mode, note) {
        this.mode = mode;
        this._frame.set('watch-note', () => {
            this._dom.watchNote.hidden = !note;
            this._dom.watchNote.textContent = note || '';
            this._dom.watchNote.dataset.mode = mode;
        });
    }

    /** Load the watchlist (server first, this browser when the API is missing) and follow it. */
    async load() {
        const res = await this._api.get('/api/watchlist');
        if (this._destroyed()) return;
        let tickers;
        if (res.ok && res.data && Array.isArray(res.data.tickers)) {
            this._setMode('server', null);
            tickers = res.data.tickers.map(parseTicker).filter(Boolean);
        } else if (res.status === 404) {
            this._setMode('local', 'The watchlist service is not available on this server: your list is kept in this browser.');
            const local = this._localList();
            tickers = local === null ? DEFAULT_TICKERS.slice() : local;
        } else {
            const local = this._localList();
            this._setMode('degraded', errorText(res, 'Could not load your watchlist') + '. Showing the copy saved in this browser.');
            tickers = local === null ? Array.from(this.saved) : local;
        }
        this._apply(tickers);
    }

    /**
     * The server's watchlist changed (a `watchlist` message: another tab, another device, the API):
     * show it. Ignored while the list is kept in this browser.
     * @param {unknown} tickers
     */
    follow(tickers) {
        if (this.mode !== 'server' || !Array.isArray(tickers)) return;
        this._apply(tickers.map(parseTicker).filter(Boolean));
    }

    /**
     * Make the rows and subscriptions those of `tickers`.
     * @param {string[]} tickers
     */
    _apply(tickers) {
        const next = new Set(tickers);
        for (const t of this.saved) {
            if (!next.has(t)) this.unsubscribe(t);
        }
        this.saved = next;
        for (const t of next) this.subscribe(t);
        this._saveLocal();
        this.renderEmpty();
    }

    /** What the Add form's submit does: add its ticker, then clear the input. */
    async submit() {
        const input = this._dom.watchInput;
        const result = await this.add(input.value);
        if (result.ok) input.value = '';
    }

    /** Add to the watchlist: the row appears at once; the server is told (or this browser remembers). */
    async add(raw) {
        const ticker = parseTicker(raw);
        const errorNode = this._dom.watchError;
        if (!ticker) {
            const shown = String(raw || '').trim();
            this._showError(errorNode, shown ? '"' + shown.slice(0, 16) + '" is not a ticker symbol' : 'Enter a ticker symbol, e.g. TSLA');
            return { ok: false };
        }
        this._showError(errorNode, null);
        if (this.saved.has(ticker)) {
            this.highlight(ticker, 'seen');
            return { ok: true, ticker: ticker };
        }
        this.saved.add(ticker);
        this.subscribe(ticker);
        this._saveLocal();
        if (this.mode === 'local') return { ok: true, ticker: ticker };
        const res = await this._api.post('/api/watchlist', { ticker: ticker });
        if (this._destroyed()) return { ok: false };
        if (res.ok) { // 201 added, 200 already there
            if (this.mode !== 'server') this._setMode('server', null);
            return { ok: true, ticker: ticker };
        }
        if (res.status === 404) {
            this._setMode('local', 'The watchlist service is not available on this server: your list is kept in this browser.');
            return { ok: true, ticker: ticker };
        }
        if (res.status >= 400 && res.status < 500) {
            // Refused (400 invalid symbol, 409 watchlist full, ...): undo.
            this.saved.delete(ticker);
            this.unsubscribe(ticker);
            this._saveLocal();
            this._showError(errorNode, errorText(res, 'Could not add ' + ticker));
            return { ok: false };
        }
        this._setMode('degraded', errorText(res, 'Could not save ' + ticker) + '. It is kept in this browser for now.');
        return { ok: true, ticker: ticker };
    }

    /** Remove from the watchlist (and unsubscribe). */
    async remove(raw) {
        const ticker = parseTicker(raw);
        if (!ticker) return { ok: false };
        const saved = this.saved.delete(ticker);
        this.unsubscribe(ticker);
        this._saveLocal();
        if (!saved || this.mode === 'local') return { ok: true };
        const res = await this._api.del('/api/watchlist/' + encodeURIComponent(ticker));
        if (this._destroyed()) return { ok: false };
        // 404 from a server whose watchlist API answered before: the ticker was not in the list.
        if (res.ok || res.status === 404) return { ok: true };
        this.saved.add(ticker);
        this.subscribe(ticker);
        this._saveLocal();
        this._showError(this._dom.watchError, errorText(res, 'Could not remove ' + ticker));
        return { ok: false };
    }

    /**
     * Play a row's effect ('seen', 'pattern', 'alert'); nothing when `ticker` has no row.
     * @param {string | null} ticker
     * @param {string} effect
     */
    highlight(ticker, effect) {
        const row = this.rows.get(ticker);
        if (!row) return;
        this._frame.set(row.ticker + ':effect', () => {
            // toggling the name restarts the animation
            const current = row.el.dataset.effect || '';
            row.el.dataset.effect = current === effect + '1' ? effect + '2' : effect + '1';
        });
    }

    /**
     * Mark the row of `ticker` with its latest pattern (kept for a row added later; an older one is ignored).
     * @param {string} ticker
     * @param {PatternChip} chip
     */
    showPattern(ticker, chip) {
        const known = this.patterns.get(ticker);
        if (known && known.time > chip.time) return;
        this.patterns.delete(ticker);
        this.patterns.set(ticker, chip);
        if (this.patterns.size > MAX_PATTERN_CHIPS) this.patterns.delete(this.patterns.keys().next().value);
        this._paintChip(ticker);
    }

    _paintChip(ticker) {
        const row = this.rows.get(ticker);
        const chip = this.patterns.get(ticker);
        if (!row || !chip) return;
        this._frame.set(ticker + ':chip', () => {
            row.cells.chip.hidden = false;
            row.cells.chip.textContent = chip.text;
            row.cells.chip.title = chip.title;
            row.el.classList.add('has-pattern');
        });
    }
}
