// @ts-check
/**
 * Legend Realtime dashboard — alert rules (/api/alerts/rules): the list with each rule's state, and what
 * the form (rule-form.js) does: create, edit (PATCH), preview (POST /api/alerts/preview, its fires marked
 * on the ticker's chart); and pause, resume and delete from the list. An object of its own (the
 * dashboard's `alertRules`): it gets the REST client, the form, its elements, the frame batch, how to show
 * an error, the exchange's zone, how to mark the chart, the dashboard's timer function and whether the
 * page is gone; it keeps the rules to itself.
 */
import { el } from './dom.js';
import { fmtMarketTime, fmtMoney } from './format.js';
import { notifyText } from './notifications.js';
import { errorText } from './rest.js';
import { describeRule, ruleBody, ruleStatus, ruleValues, serverErrors } from './rule-kinds.js';

export { ALERT_KINDS, KIND_LABEL } from './rule-kinds.js';

/** @typedef {import('./rest.js').Api} Api */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */
/** @typedef {import('./rule-form.js').RuleForm} RuleForm */
/** @typedef {import('./rule-kinds.js').RuleValues} RuleValues */
/** @typedef {{ok: boolean, rule?: any, error?: string, fields?: Record<string, string>}} RuleResult */
/**
 * Mark a preview's fires on `ticker`'s chart ({ms, price, text}); resolves once the chart shows them.
 * @typedef {(ticker: string, marks: import('../price-chart.js').ChartMarker[]) => Promise<unknown>} ShowMarks
 */

export const PREVIEW_LISTED = 3; // fires named in the preview's note (the newest)
// After a halt begins or ends, the rules are read again after these delays while the server's answer
// does not say it yet (the evaluating instance learns it from the price log a moment after this page).
export const STATUS_REREAD_MS = [250, 500, 1000, 2000];

export class AlertRules {
    /**
     * @param {object} parts
     * @param {Pick<Api, 'get' | 'post' | 'patch' | 'del'>} parts.api the REST client
     * @param {Pick<RuleForm, 'read' | 'edit' | 'reset' | 'showErrors' | 'clearErrors' | 'setMarket' | 'editing'>} parts.form the rule form
     * @param {Record<string, any>} parts.dom ruleNote, ruleError, ruleList, rulesEmpty, rulePreviewNote
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies DOM changes once per frame
     * @param {(node: any, text: string | null) => void} parts.showError shows (null: hides) a form's error
     * @param {() => string | null} parts.zone the exchange's time zone (expiry and fire times)
     * @param {ShowMarks} parts.showMarks marks a preview's fires on the ticker's chart
     * @param {(fn: () => void, ms: number) => unknown} parts.later runs `fn` after `ms` unless the page is gone
     * @param {() => boolean} parts.destroyed whether the page was destroyed (answers arriving later are ignored)
     */
    constructor({ api, form, dom, frame, showError, zone, showMarks, later, destroyed }) {
        this._api = api;
        this._form = form;
        this._dom = dom;
        this._frame = frame;
        this._showError = showError;
        this._zone = zone;
        this._showMarks = showMarks;
        this._later = later;
        this._destroyed = destroyed;
        /** @type {boolean | null} whether the server has the rules API; null: not known yet */
        this.available = null;
        /** @type {Map<string, any>} id -> rule */
        this.rules = new Map();
        /** @type {string | null} the market's status (rules pause outside their session: read again when it changes) */
        this.marketStatus = null;
        /** counts market status changes: a re-read for an older one stops */
        this._statusChanges = 0;
        /** @type {any} the latest preview's answer */
        this.lastPreview = null;
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

    /**
     * The market's status changed: the form's session hint follows, and the rules are read again (those
     * waiting for their session, or held by a halt, change state).
     * @param {any} msg a market_status message
     */
    onMarketStatus(msg) {
        this._form.setMarket(msg);
        const status = msg && typeof msg.status === 'string' ? msg.status : null;
        const changed = this.marketStatus !== null && status !== this.marketStatus;
        this.marketStatus = status;
        if (changed && this.available === true && this.rules.size) this._followStatus(status, ++this._statusChanges, 0);
    }

    /**
     * Read the rules after the market's status changed to `status` (change number `change`). The server
     * holds every armed rule during a halt once its evaluating instance has read the status from the price
     * log, a moment after this page: while the answer does not say what `status` does, it is read again
     * (STATUS_REREAD_MS), then left as the server says (another instance of a cluster does not know of a halt).
     * @param {string | null} status
     * @param {number} change
     * @param {number} attempt
     */
    async _followStatus(status, change, attempt) {
        if (change !== this._statusChanges) return; // the status changed again: that change reads them
        await this.load();
        if (this._destroyed() || change !== this._statusChanges || attempt >= STATUS_REREAD_MS.length) return;
        const halted = status === 'halted';
        const behind = [...this.rules.values()].some(
            (rule) => rule.armed !== false && rule.state !== 'expired' && (rule.paused_by === 'halted') !== halted,
        );
        if (behind) this._later(() => this._followStatus(status, change, attempt + 1), STATUS_REREAD_MS[attempt]);
    }

    /** What the form's submit does: create the rule it describes, or save the one it edits. */
    async submit() {
        const values = this._form.read();
        const editing = this._form.editing;
        const result = editing === null ? await this.create(values) : await this.update(editing, values);
        if (result.ok) this._form.reset();
        return result;
    }

    /** Leave the rule being edited (the form's Cancel). */
    cancelEdit() {
        this._form.reset();
        this._showError(this._dom.ruleError, null);
        this._render();
    }

    /**
     * Edit a rule of the list in the form.
     * @param {unknown} id
     */
    edit(id) {
        const key = String(id);
        const rule = this.rules.get(key);
        if (!rule) return false;
        this._showError(this._dom.ruleError, null);
        this._form.edit(key, ruleValues(rule), rule.ticker + ' ' + describeRule(rule).condition);
        this._render();
        return true;
    }

    /**
     * Create an alert rule from the form's values (or some of them: {ticker, kind, threshold} is a price
     * rule of the regular session that fires again after crossing back).
     * @param {Partial<RuleValues> | Record<string, unknown>} input
     * @returns {Promise<RuleResult>}
     */
    async create(input) {
        const { body, errors } = ruleBody(/** @type {any} */ (input));
        if (!this._check(errors)) return this._failed(errors);
        const res = await this._api.post('/api/alerts/rules', body);
        if (res.status === 404 && !this._destroyed()) {
            this._unavailable();
            return { ok: false, error: 'Alert rules are not available on this server yet.' };
        }
        return this._answer(res, 'Could not create the alert');
    }

    /**
     * Change a rule to the form's values (PATCH; the fields its kind has no use for are cleared).
     * @param {unknown} id
     * @param {Partial<RuleValues>} input
     * @returns {Promise<RuleResult>}
     */
    async update(id, input) {
        const { body, errors } = ruleBody(input, { full: true });
        if (!this._check(errors)) return this._failed(errors);
        const res = await this._api.patch('/api/alerts/rules/' + encodeURIComponent(String(id)), body);
        return this._answer(res, 'Could not save the alert');
    }

    /**
     * Pause (false) or resume (true) a rule: resuming one that fired with "once" arms it again.
     * @param {unknown} id
     * @param {boolean} armed
     * @returns {Promise<RuleResult>}
     */
    async setArmed(id, armed) {
        const key = String(id);
        const res = await this._api.patch('/api/alerts/rules/' + encodeURIComponent(key), { armed: !!armed });
        if (this._destroyed()) return { ok: false };
        if (!res.ok) {
            const { fields, other } = serverErrors(res);
            const text = other.concat(Object.values(fields)).join('; ') || errorText(res, 'Could not ' + (armed ? 'resume' : 'pause') + ' the alert');
            this._showError(this._dom.ruleError, text);
            if (res.status === 404) await this.load();
            return { ok: false, error: text };
        }
        this._showError(this._dom.ruleError, null);
        this._store(res.data);
        return { ok: true, rule: res.data };
    }

    /** Errors found before asking the server: shown next to their fields. Returns whether there were none. */
    _check(errors) {
        const rest = this._form.showErrors(errors);
        this._showError(this._dom.ruleError, rest.length ? rest.join('; ') : null);
        return Object.keys(errors).length === 0;
    }

    /** @returns {RuleResult} */
    _failed(errors) {
        return { ok: false, error: Object.values(errors).join('; '), fields: errors };
    }

    /**
     * The server's answer to a create or a save: the rule listed, or its errors next to their fields.
     * @returns {Promise<RuleResult>}
     */
    async _answer(res, fallback) {
        if (this._destroyed()) return { ok: false };
        if (!res.ok) {
            const { fields, other } = serverErrors(res);
            const rest = this._form.showErrors(fields).concat(other);
            const text = rest.length ? rest.join('; ') : Object.keys(fields).length ? null : errorText(res, fallback);
            this._showError(this._dom.ruleError, text);
            if (res.status === 404) await this.load(); // the rule is gone (deleted elsewhere)
            return { ok: false, error: text || Object.values(fields).join('; '), fields };
        }
        this.available = true;
        this._showNote(null);
        this._showError(this._dom.ruleError, null);
        if (!this._store(res.data)) await this.load();
        return { ok: true, rule: res.data };
    }

    /** Keep (and show) a rule the server answered with; false when the answer is not one. */
    _store(rule) {
        if (!rule || rule.id === undefined || rule.id === null) return false;
        this.rules.set(String(rule.id), rule);
        this._render();
        return true;
    }

    /**
     * Delete a rule (shown gone at once, back with an error if the server refuses).
     * @param {unknown} id
     */
    async remove(id) {
        const key = String(id);
        const rule = this.rules.get(key);
        this.rules.delete(key);
        if (this._form.editing === key) this._form.edit(null, null);
        this._render();
        const res = await this._api.del('/api/alerts/rules/' + encodeURIComponent(key));
        if (this._destroyed()) return { ok: false };
        if (res.ok || res.status === 404) return { ok: true };
        if (rule) this.rules.set(key, rule);
        this._render();
        this._showError(this._dom.ruleError, errorText(res, 'Could not delete the alert'));
        return { ok: false };
    }

    /**
     * Where the rule the form describes would have fired over the last `days` (POST /api/alerts/preview):
     * said under the form, and marked on the ticker's chart. Resolves to {ok, fires}.
     * @param {Partial<RuleValues>} [input] the form's values when not given
     * @returns {Promise<{ok: boolean, fires?: any[], error?: string, fields?: Record<string, string>}>}
     */
    async preview(input) {
        const values = input || this._form.read();
        const { body, errors } = ruleBody(values, { days: true });
        this._previewNote(null);
        if (!this._check(errors)) return this._failed(errors);
        const res = await this._api.post('/api/alerts/preview', body);
        if (this._destroyed()) return { ok: false };
        if (res.status === 404 || res.status === 405) {
            const text = 'Preview is not available on this server yet.';
            this._previewNote(text);
            return { ok: false, error: text };
        }
        if (!res.ok) {
            const { fields, other } = serverErrors(res);
            const rest = this._form.showErrors(fields).concat(other);
            const text = rest.length ? rest.join('; ') : Object.keys(fields).length ? null : errorText(res, 'Could not preview the alert');
            this._showError(this._dom.ruleError, text);
            return { ok: false, error: text || Object.values(fields).join('; '), fields };
        }
        const data = res.data && typeof res.data === 'object' ? res.data : {};
        const fires = (Array.isArray(data.fires) ? data.fires : [])
            .map((f) => ({ ms: f && typeof f.at === 'string' ? Date.parse(f.at) : NaN, price: f && typeof f.price === 'number' ? f.price : null, message: f && f.message ? String(f.message) : '' }))
            .filter((f) => Number.isFinite(f.ms))
            .sort((a, b) => a.ms - b.ms);
        this.lastPreview = { ticker: body.ticker, days: body.days, fires, evaluated: data.evaluated || null };
        this._previewNote(this._previewText(body.days, fires, data.evaluated));
        await this._showMarks(body.ticker, fires.map((f) => ({ ms: f.ms, price: f.price, text: '' })));
        return { ok: true, fires };
    }

    /** "Would have fired 3 times in the last 5 days (1,950 bars): Dec 3, 10:31 AM ET at $151.20; …". */
    _previewText(days, fires, evaluated) {
        const period = days === 1 ? 'the last day' : 'the last ' + days + ' days';
        const bars = evaluated && typeof evaluated.bars === 'number' ? ' (' + evaluated.bars.toLocaleString() + ' bars)' : '';
        if (!fires.length) return 'Would not have fired in ' + period + bars + '.';
        const zone = this._zone();
        const listed = fires.slice(-PREVIEW_LISTED).reverse()
            .map((f) => fmtMarketTime(new Date(f.ms), zone) + (f.price === null ? '' : ' at ' + fmtMoney(f.price)));
        const more = fires.length > PREVIEW_LISTED ? '; …' : '';
        return 'Would have fired ' + fires.length + (fires.length === 1 ? ' time' : ' times') + ' in ' + period + bars
            + ' (marked on the chart). Latest: ' + listed.join('; ') + more + '.';
    }

    _previewNote(text) {
        const node = this._dom.rulePreviewNote;
        this._frame.set(node, () => {
            node.hidden = !text;
            node.textContent = text || '';
        });
    }

    _render() {
        this._frame.set('rules', () => {
            const list = this._dom.ruleList;
            const zone = this._zone();
            list.replaceChildren();
            this._dom.rulesEmpty.hidden = this.rules.size > 0 || this.available !== true;
            for (const [id, rule] of this.rules) {
                const { condition, details } = describeRule(rule, zone);
                const status = ruleStatus(rule);
                const name = rule.ticker + ' ' + condition;
                const li = el('li', 'rule');
                li.dataset.ruleId = id;
                li.dataset.state = status.state;
                if (this._form.editing === id) li.setAttribute('aria-current', 'true');
                const main = el('div', 'rule-main');
                const text = el('div', 'rule-text');
                text.append(el('span', 'rule-ticker', rule.ticker), el('span', 'rule-cond', condition));
                const tags = el('div', 'rule-tags');
                const state = el('span', 'tag tag-state', status.state === 'fired' && status.fired ? status.fired : status.text);
                state.dataset.state = status.state;
                tags.appendChild(state);
                if (status.fired && status.state !== 'fired') tags.appendChild(el('span', 'tag tag-fired', status.fired));
                const sends = notifyText(rule.notify);
                if (sends) tags.appendChild(el('span', 'tag tag-notify', sends));
                main.append(text, el('div', 'rule-details', details), tags);
                const buttons = el('div', 'rule-buttons');
                buttons.appendChild(this._button(id, 'edit', 'Edit', 'Edit alert ' + name));
                if (status.action === 'pause') buttons.appendChild(this._button(id, 'pause', 'Pause', 'Pause alert ' + name));
                if (status.action === 'resume') buttons.appendChild(this._button(id, 'resume', status.state === 'fired' ? 'Re-arm' : 'Resume', (status.state === 'fired' ? 'Re-arm' : 'Resume') + ' alert ' + name));
                const del = this._button(id, 'delete', '×', 'Delete alert ' + name);
                del.className = 'icon-btn';
                buttons.appendChild(del);
                li.append(main, buttons);
                list.appendChild(li);
            }
        });
    }

    _button(id, action, text, label) {
        const button = el('button', 'btn btn-ghost btn-mini', text);
        button.type = 'button';
        button.dataset.ruleId = id;
        button.dataset.ruleAction = action;
        button.setAttribute('aria-label', label);
        return button;
    }
}
