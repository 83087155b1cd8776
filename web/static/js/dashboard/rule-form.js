// @ts-check
/**
 * Legend Realtime dashboard — the alert rule form: every kind with only its fields (rule-kinds.js says
 * which), labels that follow the kind, the errors of each field shown next to it (aria-invalid and
 * aria-describedby), the session selector's word on the market now, and the two modes: a new rule, or
 * editing one (same fields, "Save changes", "Cancel"). It reads and fills the inputs; rules.js decides
 * what a submit does. The form changes only on the trader's input and the answers to it, so it writes
 * to the page at once (no frame batch).
 */
import { el } from './dom.js';
import { BAR_LABELS, DEFAULTS, FORM_FIELDS, KINDS, LEVEL_DEFAULTS, LEVELS, kindFields, sessionHint } from './rule-kinds.js';
import { BAR_INTERVALS } from './bars.js';

/** @typedef {import('./rule-kinds.js').RuleValues} RuleValues */

/** The input (by id, after 'rule-') of each value of the form. */
const INPUTS = {
    ticker: 'ticker', kind: 'kind', threshold: 'threshold', lower: 'lower', upper: 'upper', window: 'window',
    windowUnit: 'window-unit', period: 'period', interval: 'interval', evaluate: 'evaluate', session: 'session',
    rearm: 'rearm', cooldown: 'cooldown', expires: 'expires', days: 'days', notify: 'notify',
};

/** The value (INPUTS) whose input each field's error goes with, by the API's names. */
const FIELD_VALUE = {
    ticker: 'ticker', kind: 'kind', threshold: 'threshold', lower: 'lower', upper: 'upper', window_seconds: 'window',
    period: 'period', interval: 'interval', evaluate: 'evaluate', session: 'session', rearm: 'rearm',
    cooldown_seconds: 'cooldown', expires_at: 'expires', days: 'days', notify: 'notify',
};

export class RuleForm {
    /**
     * @param {object} parts
     * @param {any} parts.form the form element (#rule-form): its inputs are found inside it by id
     * @param {(target: any, type: string, fn: (event: any) => void) => void} parts.listen adds a listener
     *     removed when the page goes
     * @param {() => string | null} parts.zone the exchange's time zone (the market's times in the hint)
     */
    constructor({ form, listen, zone }) {
        this.form = form;
        this._zone = zone;
        const $ = (/** @type {string} */ id) => /** @type {any} */ (form.querySelector('#rule-' + id));
        /** @type {Record<string, any>} the inputs, by value name */
        this.inputs = {};
        for (const [name, id] of Object.entries(INPUTS)) this.inputs[name] = $(id);
        this.title = $('form-title');
        this.submitButton = $('submit');
        this.cancelButton = $('cancel');
        this.previewButton = $('preview');
        this.hint = $('session-hint');
        this.thresholdLabel = $('threshold-label');
        /** @type {string | null} the id of the rule being edited; null: a new rule */
        this.editing = null;
        /** @type {any} the latest market_status */
        this.market = null;
        this._level = KINDS[DEFAULTS.kind].level;
        this._fillOptions();
        this.fill(DEFAULTS);
        listen(this.inputs.kind, 'change', () => this._kindChanged());
        for (const name of ['evaluate', 'rearm', 'session']) listen(this.inputs[name], 'change', () => this.update());
        listen(form, 'input', (event) => {
            const field = event.target && event.target.closest && event.target.closest('.field[data-field]');
            if (field) this.showError(field.dataset.field, null);
        });
    }

    /** The condition select (grouped as a trader looks for them) and the bar intervals. */
    _fillOptions() {
        const kinds = this.inputs.kind;
        kinds.replaceChildren();
        const groups = new Map();
        for (const [kind, shape] of Object.entries(KINDS)) {
            let group = groups.get(shape.group);
            if (!group) {
                group = el('optgroup');
                group.label = shape.group;
                groups.set(shape.group, group);
                kinds.appendChild(group);
            }
            const option = el('option', null, shape.label);
            option.value = kind;
            group.appendChild(option);
        }
        const intervals = this.inputs.interval;
        intervals.replaceChildren();
        for (const interval of BAR_INTERVALS) {
            const option = el('option', null, BAR_LABELS[interval]);
            option.value = interval;
            intervals.appendChild(option);
        }
    }

    /** @returns {RuleValues} the inputs' values */
    read() {
        /** @type {Record<string, string>} */
        const values = {};
        for (const [name, input] of Object.entries(this.inputs)) {
            values[name] = name === 'notify' ? this._checked().join(',') : String(input.value);
        }
        return /** @type {RuleValues} */ (values);
    }

    /**
     * Put `values` in the inputs (those not given keep theirs) and show the fields of their kind.
     * @param {Partial<RuleValues>} values
     */
    fill(values) {
        for (const [name, value] of Object.entries(values)) {
            const input = this.inputs[name];
            if (!input || value === undefined || value === null) continue;
            if (name === 'notify') for (const box of this._boxes()) box.checked = String(value).split(',').includes(box.value);
            else input.value = String(value);
        }
        this._level = (KINDS[this.inputs.kind.value] || KINDS[DEFAULTS.kind]).level;
        this.update();
    }

    /** The "Send to" checkboxes (the fieldset #rule-notify). */
    _boxes() {
        return Array.from(this.inputs.notify.querySelectorAll('input[type="checkbox"]'));
    }

    /** The channels checked under "Send to". */
    _checked() {
        return this._boxes().filter((box) => box.checked).map((box) => box.value);
    }

    /** A new kind: its threshold keeps its value when it means the same (a price for a price), else its default. */
    _kindChanged() {
        const level = (KINDS[this.inputs.kind.value] || KINDS[DEFAULTS.kind]).level;
        if (level !== this._level && level !== null) this.inputs.threshold.value = LEVEL_DEFAULTS[level];
        this._level = level;
        this.showError('threshold', null);
        this.update();
    }

    /** Show only the fields of the chosen kind (and of its choices), with its threshold's label and the hint. */
    update() {
        const kind = this.inputs.kind.value;
        const shape = KINDS[kind] || KINDS[DEFAULTS.kind];
        const shown = kindFields(kind, this.inputs.evaluate.value);
        for (const [field, on] of Object.entries(shown)) this._field(field).hidden = !on;
        this._field('cooldown_seconds').hidden = this.inputs.rearm.value !== 'cooldown';
        if (shape.level) {
            const level = LEVELS[shape.level];
            this.thresholdLabel.textContent = level.label;
            this.inputs.threshold.placeholder = level.placeholder;
        }
        this.renderHint();
    }

    /** The wrapper (.field) of a field, by its API name. */
    _field(name) {
        return this.form.querySelector('.field[data-field="' + name + '"]');
    }

    /**
     * The market changed (a market_status message): the session selector's hint follows it.
     * @param {any} msg
     */
    setMarket(msg) {
        this.market = msg && typeof msg === 'object' ? msg : null;
        this.renderHint();
    }

    renderHint() {
        const text = sessionHint(this.inputs.session.value, this.market, this._zone());
        this.hint.hidden = !text;
        this.hint.textContent = text || '';
    }

    /**
     * Show `message` next to the field `name` (an API name; null clears it). Returns false when the form
     * shows no such field now (the caller shows the message elsewhere).
     * @param {string} name
     * @param {string | null} message
     */
    showError(name, message) {
        const value = FIELD_VALUE[name];
        const input = value ? this.inputs[value] : null;
        const box = value ? this.form.querySelector('#rule-' + INPUTS[value] + '-error') : null;
        const field = this._field(name);
        if (!input || !box) return false;
        if (message && field && field.hidden) return false;
        box.hidden = !message;
        box.textContent = message || '';
        if (message) input.setAttribute('aria-invalid', 'true');
        else input.removeAttribute('aria-invalid');
        return true;
    }

    /**
     * Show each field's error (and clear the others'); the first invalid input gets the focus. Returns the
     * messages that have no field shown to go next to (named).
     * @param {Record<string, string>} errors by the API's field names
     * @param {{focus?: boolean}} [options]
     */
    showErrors(errors, options) {
        const rest = [];
        let first = null;
        for (const name of FORM_FIELDS) {
            const message = errors[name] || null;
            if (!this.showError(name, message) && message) rest.push(name + ': ' + message);
            else if (message && !first) first = name;
        }
        for (const [name, message] of Object.entries(errors)) {
            if (!FORM_FIELDS.includes(name)) rest.push(name + ': ' + message);
        }
        if (first && (!options || options.focus !== false)) {
            const input = this.inputs[FIELD_VALUE[first]];
            if (input && typeof input.focus === 'function') input.focus();
        }
        return rest;
    }

    /** Clear every field's error. */
    clearErrors() {
        this.showErrors({}, { focus: false });
    }

    /**
     * Edit `rule` (its id and its values), or (null) go back to a new rule, keeping the ticker and kind.
     * @param {string | null} id
     * @param {RuleValues | null} values
     * @param {string} [name] the rule in words, for the title
     */
    edit(id, values, name) {
        this.editing = id;
        this.clearErrors();
        if (id !== null && values) {
            this.fill(values);
            this.title.textContent = 'Edit alert' + (name ? ': ' + name : '');
            this.submitButton.textContent = 'Save changes';
            this.cancelButton.hidden = false;
        } else {
            this.title.textContent = 'New alert';
            this.submitButton.textContent = 'Create alert';
            this.cancelButton.hidden = true;
        }
    }

    /** After a rule was created or saved: a new rule again, its levels empty (ticker, kind and choices stay). */
    reset() {
        const level = (KINDS[this.inputs.kind.value] || KINDS[DEFAULTS.kind]).level;
        this.edit(null, null);
        this.fill({ threshold: level ? LEVEL_DEFAULTS[level] : '', lower: '', upper: '', expires: '' });
    }
}
