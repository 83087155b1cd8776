// @ts-check
/**
 * Legend Realtime dashboard — the watchlist: one table row per ticker (price, change, volume, sparkline,
 * day range), kept on the server (GET/POST/DELETE /api/watchlist) or, when that API answers 404, in this
 * browser. Methods of RealtimeDashboard (dashboard.js installs them); their state: rows, watchlist,
 * watchlistMode.
 */
import { recordPrice } from './charts.js';
import { el } from './dom.js';
import { fmtChange, fmtPercent, fmtPrice, fmtVolume, num, parseTicker, parseTime } from './format.js';
import { errorText } from './rest.js';
import { KEYS, storage } from './storage.js';

/** @typedef {import('./types.js').Dashboard} Dashboard */

export const DEFAULT_TICKERS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'SPY'];
export const QUICK_ADD = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'TSLA', 'SPY'];

export const CHART_POINTS = 90; // per ticker

/** @satisfies {ThisType<Dashboard>} */
export const watchlist = {
    /** Show a live row for `ticker` and subscribe to its prices. Returns the ticker, or null if invalid. */
    subscribeTicker(raw) {
        const ticker = parseTicker(raw);
        if (!ticker || this.destroyed) return null;
        if (!this.rows.has(ticker)) {
            this.rows.set(ticker, this._createRow(ticker));
            this._paintChip(ticker);
            this._renderEmpty();
        }
        this.ws.subscribe('ticker', ticker);
        return ticker;
    },

    /** Remove the row of `ticker` and unsubscribe from its prices. */
    unsubscribeTicker(raw) {
        const ticker = parseTicker(raw);
        if (!ticker) return false;
        const row = this.rows.get(ticker);
        if (row) {
            if (this.charts.ticker === ticker) this.closeChart();
            this.rows.delete(ticker);
            this.frame.delete(row);
            row.el.remove();
            this.writer.forgetWithin(row.el); // its cells must not stay in the client's change cache
            this._renderEmpty();
        }
        this.ws.unsubscribe('ticker', ticker);
        return !!row;
    },

    _createRow(ticker) {
        const el = this.dom.rowTemplate.content.firstElementChild.cloneNode(true);
        el.dataset.ticker = ticker;
        const q = (sel) => el.querySelector(sel);
        q('.sym').textContent = ticker;
        q('.sym').title = 'Open the ' + ticker + ' chart';
        q('.remove').setAttribute('aria-label', 'Remove ' + ticker + ' from the watchlist');
        q('.remove').title = 'Remove ' + ticker;
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
        this.dom.rows.appendChild(el);
        return row;
    },

    _onPrice(msg, info) {
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
        this.writer.write(c.price, price, fmtPrice);
        this.writer.write(c.chg, msg.change, fmtChange);
        this.writer.write(c.pct, msg.change_percent, fmtPercent);
        this.writer.write(c.vol, msg.volume, fmtVolume);
        this.writer.write(c.lo, msg.low, fmtPrice);
        this.writer.write(c.hi, msg.high, fmtPrice);

        const change = num(msg.change) || 0;
        row.trend = change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
        if (!info || !info.replayed) {
            const before = previous ? num(previous.price) : null;
            if (before !== null && before !== price) row.flash = price > before ? 'up' : 'down';
        }
        this.frame.set(row, () => this._paintRow(row));
        this.charts.onPrice(ticker, row, recorded);
    },

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
    },

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
    },

    _renderEmpty() {
        this.frame.set('empty', () => {
            const d = this.dom;
            const count = this.rows.size;
            const loading = this.watchlistMode === 'loading';
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
    },

    _setLoading(on) {
        this.frame.set('loading', () => {
            const rows = this.dom.rows;
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
        if (!on) this._renderEmpty();
    },

    _localList() {
        const raw = storage.get(KEYS.watchlist(this.userId));
        if (raw === null) return null;
        try {
            const list = JSON.parse(raw);
            return Array.isArray(list) ? list.map(parseTicker).filter(Boolean) : null;
        } catch (_) {
            return null;
        }
    },

    _saveLocal() {
        storage.set(KEYS.watchlist(this.userId), JSON.stringify(Array.from(this.watchlist)));
    },

    _setWatchlistMode(mode, note) {
        this.watchlistMode = mode;
        this.frame.set('watch-note', () => {
            this.dom.watchNote.hidden = !note;
            this.dom.watchNote.textContent = note || '';
            this.dom.watchNote.dataset.mode = mode;
        });
    },

    /** Load the watchlist (server first, this browser when the API is missing) and follow it. */
    async loadWatchlist() {
        const res = await this.api.get('/api/watchlist');
        if (this.destroyed) return;
        let tickers;
        if (res.ok && res.data && Array.isArray(res.data.tickers)) {
            this._setWatchlistMode('server', null);
            tickers = res.data.tickers.map(parseTicker).filter(Boolean);
        } else if (res.status === 404) {
            this._setWatchlistMode('local', 'The watchlist service is not available on this server: your list is kept in this browser.');
            const local = this._localList();
            tickers = local === null ? DEFAULT_TICKERS.slice() : local;
        } else {
            const local = this._localList();
            this._setWatchlistMode('degraded', errorText(res, 'Could not load your watchlist') + '. Showing the copy saved in this browser.');
            tickers = local === null ? Array.from(this.watchlist) : local;
        }
        const next = new Set(tickers);
        for (const t of this.watchlist) {
            if (!next.has(t)) this.unsubscribeTicker(t);
        }
        this.watchlist = next;
        for (const t of next) this.subscribeTicker(t);
        this._saveLocal();
        this._renderEmpty();
    },

    async _submitWatchlist() {
        const input = this.dom.watchInput;
        const result = await this.addToWatchlist(input.value);
        if (result.ok) input.value = '';
    },

    /** Add to the watchlist: the row appears at once; the server is told (or this browser remembers). */
    async addToWatchlist(raw) {
        const ticker = parseTicker(raw);
        const errorNode = this.dom.watchError;
        if (!ticker) {
            const shown = String(raw || '').trim();
            this._showError(errorNode, shown ? '"' + shown.slice(0, 16) + '" is not a ticker symbol' : 'Enter a ticker symbol, e.g. TSLA');
            return { ok: false };
        }
        this._showError(errorNode, null);
        if (this.watchlist.has(ticker)) {
            this._highlight(ticker, 'seen');
            return { ok: true, ticker: ticker };
        }
        this.watchlist.add(ticker);
        this.subscribeTicker(ticker);
        this._saveLocal();
        if (this.watchlistMode === 'local') return { ok: true, ticker: ticker };
        const res = await this.api.post('/api/watchlist', { ticker: ticker });
        if (this.destroyed) return { ok: false };
        if (res.ok) { // 201 added, 200 already there
            if (this.watchlistMode !== 'server') this._setWatchlistMode('server', null);
            return { ok: true, ticker: ticker };
        }
        if (res.status === 404) {
            this._setWatchlistMode('local', 'The watchlist service is not available on this server: your list is kept in this browser.');
            return { ok: true, ticker: ticker };
        }
        if (res.status >= 400 && res.status < 500) {
            // Refused (400 invalid symbol, 409 watchlist full, ...): undo.
            this.watchlist.delete(ticker);
            this.unsubscribeTicker(ticker);
            this._saveLocal();
            this._showError(errorNode, errorText(res, 'Could not add ' + ticker));
            return { ok: false };
        }
        this._setWatchlistMode('degraded', errorText(res, 'Could not save ' + ticker) + '. It is kept in this browser for now.');
        return { ok: true, ticker: ticker };
    },

    /** Remove from the watchlist (and unsubscribe). */
    async removeFromWatchlist(raw) {
        const ticker = parseTicker(raw);
        if (!ticker) return { ok: false };
        const saved = this.watchlist.delete(ticker);
        this.unsubscribeTicker(ticker);
        this._saveLocal();
        if (!saved || this.watchlistMode === 'local') return { ok: true };
        const res = await this.api.del('/api/watchlist/' + encodeURIComponent(ticker));
        if (this.destroyed) return { ok: false };
        // 404 from a server whose watchlist API answered before: the ticker was not in the list.
        if (res.ok || res.status === 404) return { ok: true };
        this.watchlist.add(ticker);
        this.subscribeTicker(ticker);
        this._saveLocal();
        this._showError(this.dom.watchError, errorText(res, 'Could not remove ' + ticker));
        return { ok: false };
    },

    _highlight(ticker, effect) {
        const row = this.rows.get(ticker);
        if (!row) return;
        this.frame.set(row.ticker + ':effect', () => {
            // toggling the name restarts the animation
            const current = row.el.dataset.effect || '';
            row.el.dataset.effect = current === effect + '1' ? effect + '2' : effect + '1';
        });
    },

    _showError(node, text) {
        this.frame.set(node, () => {
            node.hidden = !text;
            node.textContent = text || '';
        });
    },
};
