// @ts-check
/**
 * Legend Realtime dashboard — alert rules (GET/POST/DELETE /api/alerts/rules): the list and the form.
 * Methods of RealtimeDashboard (dashboard.js installs them); their state: rules, rulesAvailable.
 */
import { el } from './dom.js';
import { fmtThreshold, num, parseTicker } from './format.js';
import { errorText } from './rest.js';

/** @typedef {import('./types.js').Dashboard} Dashboard */

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

/** @satisfies {ThisType<Dashboard>} */
export const rules = {
    async loadRules() {
        const res = await this.api.get('/api/alerts/rules');
        if (this.destroyed) return;
        if (res.status === 404) {
            this._rulesUnavailable();
            return;
        }
        if (!res.ok) {
            this._showNote(this.dom.ruleNote, errorText(res, 'Could not load alert rules'));
            return;
        }
        this.rulesAvailable = true;
        this._showNote(this.dom.ruleNote, null);
        const list = Array.isArray(res.data) ? res.data : (res.data && (res.data.rules || res.data.items)) || [];
        this.rules.clear();
        for (const rule of list) {
            if (rule && rule.id !== undefined && rule.id !== null) this.rules.set(String(rule.id), rule);
        }
        this._renderRules();
    },

    _rulesUnavailable() {
        this.rulesAvailable = false;
        this._showNote(this.dom.ruleNote, 'Alert rules are not available on this server yet.');
    },

    _showNote(node, text) {
        this.frame.set(node, () => {
            node.hidden = !text;
            node.textContent = text || '';
        });
    },

    async _submitRule() {
        const d = this.dom;
        const result = await this.createAlertRule({
            ticker: d.ruleTicker.value,
            kind: d.ruleKind.value,
            threshold: d.ruleThreshold.value,
        });
        if (result.ok) {
            d.ruleThreshold.value = '';
        }
    },

    /** Create an alert rule ({ticker, kind, threshold}); re-arms when the price crosses back. */
    async createAlertRule(input) {
        const errorNode = this.dom.ruleError;
        const ticker = parseTicker(input.ticker);
        const kind = KIND_LABEL.has(input.kind) ? input.kind : null;
        const threshold = num(typeof input.threshold === 'string' && input.threshold.trim() === '' ? NaN : input.threshold);
        if (!ticker) return this._ruleError('Enter a ticker symbol, e.g. AAPL');
        if (!kind) return this._ruleError('Choose a condition');
        if (threshold === null || (!kind.startsWith('change_percent') && threshold <= 0)) {
            return this._ruleError('Enter a threshold' + (kind.startsWith('change_percent') ? '' : ' above zero'));
        }
        this._showError(errorNode, null);
        const res = await this.api.post('/api/alerts/rules', { ticker: ticker, kind: kind, threshold: threshold, rearm: 'recross' });
        if (this.destroyed) return { ok: false };
        if (res.status === 404) {
            this._rulesUnavailable();
            return { ok: false };
        }
        if (!res.ok) return this._ruleError(errorText(res, 'Could not create the alert'));
        this.rulesAvailable = true;
        this._showNote(this.dom.ruleNote, null);
        if (res.data && res.data.id !== undefined && res.data.id !== null) {
            this.rules.set(String(res.data.id), res.data);
            this._renderRules();
        } else {
            await this.loadRules();
        }
        return { ok: true, rule: res.data };
    },

    _ruleError(text) {
        this._showError(this.dom.ruleError, text);
        return { ok: false, error: text };
    },

    async deleteAlertRule(id) {
        const key = String(id);
        const rule = this.rules.get(key);
        this.rules.delete(key);
        this._renderRules();
        const res = await this.api.del('/api/alerts/rules/' + encodeURIComponent(key));
        if (this.destroyed) return { ok: false };
        if (res.ok || res.status === 404) return { ok: true };
        if (rule) this.rules.set(key, rule);
        this._renderRules();
        this._showError(this.dom.ruleError, errorText(res, 'Could not delete the alert'));
        return { ok: false };
    },

    _renderRules() {
        this.frame.set('rules', () => {
            const list = this.dom.ruleList;
            list.replaceChildren();
            this.dom.rulesEmpty.hidden = this.rules.size > 0 || this.rulesAvailable !== true;
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
    },
};
