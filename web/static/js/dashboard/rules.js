// @ts-check
/**
 * Legend Realtime dashboard — alert rules (GET/POST/DELETE /api/alerts/rules): the list and the form.
 * An object of its own (the dashboard's `alertRules`): it gets the REST client, its elements, the frame
 * batch, how to show an error and whether the page is gone, and keeps the rules to itself.
 */
import { el } from './dom.js';
import { fmtThreshold, num, parseTicker } from './format.js';
import { errorText } from './rest.js';

/** @typedef {import('./rest.js').Api} Api */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */

/** @type {[string, string][]} the rule kinds of POST /api/alerts/rules, and their labels */
export const ALERT_KINDS = [
    ['price_above', 'Price above'],
    ['price_below', 'Price below'],
    ['breakout', 'Breakout above'],
    ['breakdown', 'Breakdown below'],
    ['change_percent_above', 'Change % above'],
    ['change_percent_below', 'Change % below'],
    ['volume_above', 'Volume above'],
];
export const KIND_LABEL = new Map(ALERT_KINDS);

export class AlertRules {
    /**
     * @param {object} parts
     * @param {Pick<Api, 'get' | 'post' | 'del'>} parts.api the REST client
     * @param {Record<string, any>} parts.dom ruleNote, ruleError, ruleList, rulesEmpty, ruleTicker, ruleKind, ruleThreshold
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies DOM changes once per frame
     * @param {(node: any, text: string | null) => void} parts.showError shows (null: hides) a form's error
     * @param {() => boolean} parts.destroyed whether the page was destroyed (answers arriving later are ignored)
     */
    constructor({ api, dom, frame, showError, destroyed }) {
        this._api = api;
        this._dom = dom;
        this._frame = frame;
        this._showError = showError;
        this._destroyed = destroyed;
        /** @type {boolean | null} whether the server has the rules API; null: not known yet */
        this.available = null;
        /** @type {Map<string, any>} id -> rule */
        this.rules = new Map();
    }

    /** Read the user's rules again (GET /api/alerts/rules). */
    async load() {
        const res = await this._api.get('/api/alerts/rules');
        if (this._destroyed()) return;
        if (res.status === 404) {
            this._unavailable();
            return;
        }
        if (!res.ok) {
            this._showNote(errorText(res, 'Could not load alert rules'));
            return;
        }
        this.available = true;
        this._showNote(null);
        const list = Array.isArray(res.data) ? res.data : (res.data && (res.data.rules || res.data.items)) || [];
        this.rules.clear();
        for (const rule of list) {
            if (rule && rule.id !== undefined && rule.id !== null) this.rules.set(String(rule.id), rule);
        }
        this._render();
    }

    _unavailable() {
        this.available = false;
        this._showNote('Alert rules are not available on this server yet.');
    }

    _showNote(text) {
        const node = this._dom.ruleNote;
        this._frame.set(node, () => {
            node.hidden = !text;
            node.textContent = text || '';
        });
    }

    /** What the form's submit does: create the rule it describes, then clear the threshold. */
    async submit() {
        const d = this._dom;
        const result = await this.create({
            ticker: d.ruleTicker.value,
            kind: d.ruleKind.value,
            threshold: d.ruleThreshold.value,
        });
        if (result.ok) {
            d.ruleThreshold.value = '';
        }
    }

    /**
     * Create an alert rule ({ticker, kind, threshold}); re-arms when the price crosses back.
     * @param {{ticker?: unknown, kind?: unknown, threshold?: unknown}} input
     * @returns {Promise<{ok: boolean, rule?: any, error?: string}>}
     */
    async create(input) {
        const ticker = parseTicker(input.ticker);
        const kind = typeof input.kind === 'string' && KIND_LABEL.has(input.kind) ? input.kind : null;
        const threshold = num(typeof input.threshold === 'string' && input.threshold.trim() === '' ? NaN : input.threshold);
        if (!ticker) return this._error('Enter a ticker symbol, e.g. AAPL');
        if (!kind) return this._error('Choose a condition');
        if (threshold === null || (!kind.startsWith('change_percent') && threshold <= 0)) {
            return this._error('Enter a threshold' + (kind.startsWith('change_percent') ? '' : ' above zero'));
        }
        this._showError(this._dom.ruleError, null);
        const res = await this._api.post('/api/alerts/rules', { ticker: ticker, kind: kind, threshold: threshold, rearm: 'recross' });
        if (this._destroyed()) return { ok: false };
        if (res.status === 404) {
            this._unavailable();
            return { ok: false };
        }
        if (!res.ok) return this._error(errorText(res, 'Could not create the alert'));
        this.available = true;
        this._showNote(null);
        if (res.data && res.data.id !== undefined && res.data.id !== null) {
            this.rules.set(String(res.data.id), res.data);
            this._render();
        } else {
            await this.load();
        }
        return { ok: true, rule: res.data };
    }

    _error(text) {
        this._showError(this._dom.ruleError, text);
        return { ok: false, error: text };
    }

    /**
     * Delete a rule (shown gone at once, back with an error if the server refuses).
     * @param {unknown} id
     */
    async remove(id) {
        const key = String(id);
        const rule = this.rules.get(key);
        this.rules.delete(key);
        this._render();
        const res = await this._api.del('/api/alerts/rules/' + encodeURIComponent(key));
        if (this._destroyed()) return { ok: false };
        if (res.ok || res.status === 404) return { ok: true };
        if (rule) this.rules.set(key, rule);
        this._render();
        this._showError(this._dom.ruleError, errorText(res, 'Could not delete the alert'));
        return { ok: false };
    }

    _render() {
        this._frame.set('rules', () => {
            const list = this._dom.ruleList;
            list.replaceChildren();
            this._dom.rulesEmpty.hidden = this.rules.size > 0 || this.available !== true;
            for (const [id, rule] of this.rules) {
                const kind = rule.kind || rule.alert_type;
                const li = el('li', 'rule');
                const text = el('div', 'rule-text');
                text.appendChild(el('span', 'rule-ticker', rule.ticker));
                text.appendChild(el('span', 'rule-cond', (KIND_LABEL.get(kind) || kind) + ' ' + fmtThreshold(kind, rule.threshold)));
                if (rule.armed === false) text.appendChild(el('span', 'tag', 'disarmed'));
                else if (num(rule.triggers) > 0) text.appendChild(el('span', 'tag', 'fired ' + rule.triggers + '×'));
                const del = el('button', 'icon-btn', '×');
                del.type = 'button';
                del.dataset.ruleId = id;
                del.setAttribute('aria-label', 'Delete alert ' + rule.ticker + ' ' + (KIND_LABEL.get(kind) || kind));
                li.append(text, del);
                list.appendChild(li);
            }
        });
    }
}
