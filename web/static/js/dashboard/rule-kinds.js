// @ts-check
/**
 * Legend Realtime dashboard — what an alert rule is, in a trader's words: the kinds of
 * POST /api/alerts/rules and the fields each uses, the request body a form's values make (and the
 * errors it finds before asking the server), the form's values of a stored rule (to edit it), a rule
 * described for the list, its state, the server's 400s by field, and what the session selector says
 * about the market now. Pure functions, no DOM: the form (rule-form.js) and the list (rules.js) use them.
 */
import { fmtMarketTime, fmtMoney, fmtPercent, fmtVolume, num, parseTicker } from './format.js';

/**
 * What a kind's `threshold` means: a price, the day change in percent, shares, a move in currency or in
 * percent, a multiple of the average volume; null: the kind has no threshold.
 * @typedef {'price' | 'percent' | 'volume' | 'amount' | 'move_percent' | 'multiple' | null} Level
 */
/**
 * @typedef {object} KindShape
 * @property {string} label what the trader reads (the condition select, the list, the notifications)
 * @property {string} group the condition select's group
 * @property {Level} level
 * @property {boolean} [channel] `lower` and `upper`
 * @property {boolean} [window] `window_seconds`
 * @property {boolean} [bars] `period` and `interval`, always evaluated at bar closes
 */

/** @type {Record<string, KindShape>} every kind of the API, in the order the select offers them */
export const KINDS = {
    price_above: { label: 'Price above', group: 'Price', level: 'price' },
    price_below: { label: 'Price below', group: 'Price', level: 'price' },
    crossing: { label: 'Price crosses', group: 'Price', level: 'price' },
    breakout: { label: 'Breakout above', group: 'Price', level: 'price' },
    breakdown: { label: 'Breakdown below', group: 'Price', level: 'price' },
    entering_channel: { label: 'Enters channel', group: 'Channel', level: null, channel: true },
    exiting_channel: { label: 'Exits channel', group: 'Channel', level: null, channel: true },
    moving_up: { label: 'Rises by amount', group: 'Move within a time window', level: 'amount', window: true },
    moving_down: { label: 'Falls by amount', group: 'Move within a time window', level: 'amount', window: true },
    moving_up_percent: { label: 'Rises by percent', group: 'Move within a time window', level: 'move_percent', window: true },
    moving_down_percent: { label: 'Falls by percent', group: 'Move within a time window', level: 'move_percent', window: true },
    sma_cross_up: { label: 'Crosses above SMA', group: 'Moving average', level: null, bars: true },
    sma_cross_down: { label: 'Crosses below SMA', group: 'Moving average', level: null, bars: true },
    change_percent_above: { label: 'Change % above', group: 'Day', level: 'percent' },
    change_percent_below: { label: 'Change % below', group: 'Day', level: 'percent' },
    volume_above: { label: 'Volume above', group: 'Day', level: 'volume' },
    volume_spike: { label: 'Volume spike', group: 'Volume', level: 'multiple', bars: true },
};

/** @type {[string, string][]} the kinds and their labels, in the select's order */
export const ALERT_KINDS = Object.entries(KINDS).map(([kind, shape]) => [kind, shape.label]);
export const KIND_LABEL = new Map(ALERT_KINDS);

/** What the threshold field is called, and what it says when empty, by level. */
export const LEVELS = {
    price: { label: 'Price ($)', missing: 'Enter the price level', placeholder: '150.00' },
    percent: { label: 'Day change (%)', missing: 'Enter the day change in percent', placeholder: '3' },
    volume: { label: 'Volume (shares)', missing: 'Enter a number of shares', placeholder: '1000000' },
    amount: { label: 'Move ($)', missing: 'Enter the move in dollars', placeholder: '2.00' },
    move_percent: { label: 'Move (%)', missing: 'Enter the move in percent', placeholder: '2' },
    multiple: { label: '× average volume', missing: 'Enter how many times the average volume', placeholder: '3' },
};

export const BAR_LABELS = { '1m': '1 minute', '5m': '5 minutes', '15m': '15 minutes', '1h': '1 hour', '1d': '1 day' };
export const SESSIONS = { regular: 'Regular hours', extended: 'Extended hours', any: 'Any time' };
export const REARMS = { once: 'Fires once', recross: 'Fires on each new cross', cooldown: 'Fires after a cool-down' };
export const WINDOW_UNITS = { s: 1, min: 60, h: 3600 };
export const PREVIEW_DAYS = 5;

/**
 * The form's values, as its inputs hold them (strings): the API's fields, but the window as an amount and
 * a unit, the cool-down in minutes, the expiry in the browser's time, and the preview's days.
 * @typedef {{ticker: string, kind: string, threshold: string, lower: string, upper: string, window: string,
 *     windowUnit: string, period: string, interval: string, evaluate: string, session: string, rearm: string,
 *     cooldown: string, expires: string, days: string, notify?: string}} RuleValues
 * `notify`: the channels checked under "Send to", comma-separated (all of NOTIFY_CHANNELS: the rule's
 * triggers go to every destination of the user, `notify: null`; none: only to the page)
 */

/** @type {Readonly<RuleValues>} the form's values for a new rule (what the trader sees first) */
export const DEFAULTS = Object.freeze({
    ticker: '',
    kind: 'price_above',
    threshold: '',
    lower: '',
    upper: '',
    window: '5',
    windowUnit: 'min',
    period: '20',
    interval: '5m',
    evaluate: 'tick',
    session: 'regular',
    rearm: 'recross',
    cooldown: '15',
    expires: '',
    days: String(PREVIEW_DAYS),
});

/** Where a rule's triggers may go besides the page (the API's channels). */
export const NOTIFY_CHANNELS = ['push', 'webhook', 'email'];

/** The default threshold of a level when the kind changes to it ('' for a price: the trader's level). */
export const LEVEL_DEFAULTS = { price: '', percent: '', volume: '', amount: '', move_percent: '', multiple: '3' };


/**
 * Which fields of the form a kind shows (the API's names; `evaluate` only where the trader may choose).
 * @param {string} kind
 * @param {string} evaluate the form's evaluate value ('tick' or 'bar_close')
 */
export function kindFields(kind, evaluate) {
    const shape = KINDS[kind] || KINDS.price_above;
    return {
        threshold: shape.level !== null,
        lower: !!shape.channel,
        upper: !!shape.channel,
        window_seconds: !!shape.window,
        period: !!shape.bars,
        evaluate: !shape.bars,
        interval: !!shape.bars || evaluate === 'bar_close',
    };
}

/** A number typed in a field, or null (empty, or not a number). */
function typed(text) {
    const s = String(text === null || text === undefined ? '' : text).trim();
    return s === '' ? null : num(s);
}

/**
 * The request body the form's values make, and the errors found before asking the server (by the API's
 * field names; the server checks ranges and says so per field). `full` (an edit, PATCH): the fields the
 * kind has no use for are sent as null, so a rule changing kind drops them.
 * @param {Partial<RuleValues>} input
 * @param {{full?: boolean, days?: boolean}} [options] days: add the preview's `days`
 * @returns {{body: Record<string, any>, errors: Record<string, string>}}
 */
export function ruleBody(input, options) {
    const opts = options || {};
    /** @type {RuleValues} */
    const v = Object.assign({}, DEFAULTS, input || {});
    /** @type {Record<string, string>} */
    const errors = {};
    /** @type {Record<string, any>} */
    const body = {};
    const ticker = parseTicker(v.ticker);
    if (!ticker) errors.ticker = String(v.ticker || '').trim() ? 'Not a ticker symbol: letters and digits, e.g. AAPL or BRK.B' : 'Enter a ticker symbol, e.g. AAPL';
    body.ticker = ticker || String(v.ticker || '').trim();
    const kind = Object.prototype.hasOwnProperty.call(KINDS, v.kind) ? v.kind : null;
    if (!kind) errors.kind = 'Choose a condition';
    body.kind = kind || v.kind;
    const shape = KINDS[kind || 'price_above'];
    const evaluate = shape.bars || v.evaluate === 'bar_close' ? 'bar_close' : 'tick';
    const shown = kindFields(kind || 'price_above', evaluate);
    const number = (key, text, missing) => {
        const value = typed(text);
        if (value === null) errors[key] = String(text || '').trim() ? 'Enter a number' : missing;
        return value;
    };
    if (shown.threshold) body.threshold = number('threshold', v.threshold, LEVELS[shape.level].missing);
    if (shown.lower) {
        body.lower = number('lower', v.lower, 'Enter the channel\'s lower price');
        body.upper = number('upper', v.upper, 'Enter the channel\'s upper price');
    }
    if (shown.window_seconds) {
        const amount = number('window_seconds', v.window, 'Enter the time window');
        const unit = WINDOW_UNITS[v.windowUnit] || WINDOW_UNITS.min;
        body.window_seconds = amount === null ? null : Math.round(amount * unit);
    }
    if (shown.period) body.period = number('period', v.period, 'Enter how many bars to average');
    body.evaluate = evaluate;
    if (shown.interval) body.interval = v.interval || DEFAULTS.interval;
    body.session = Object.prototype.hasOwnProperty.call(SESSIONS, v.session) ? v.session : DEFAULTS.session;
    body.rearm = Object.prototype.hasOwnProperty.call(REARMS, v.rearm) ? v.rearm : DEFAULTS.rearm;
    if (body.rearm === 'cooldown') {
        const minutes = number('cooldown_seconds', v.cooldown, 'Enter the cool-down in minutes');
        body.cooldown_seconds = minutes === null ? null : minutes * 60;
    }
    const expires = String(v.expires || '').trim();
    if (expires) {
        const at = new Date(expires); // a datetime-local value: the browser's own time
        if (Number.isNaN(at.getTime())) errors.expires_at = 'Enter a date and time, or leave it empty';
        else body.expires_at = at.toISOString();
    }
    if (opts.full) {
        for (const key of ['threshold', 'lower', 'upper', 'window_seconds', 'period', 'interval', 'cooldown_seconds', 'expires_at']) {
            if (!(key in body)) body[key] = null;
        }
    }
    if (v.notify !== undefined && v.notify !== null && !opts.days) { // a preview sends nothing anywhere
        const checked = NOTIFY_CHANNELS.filter((c) => String(v.notify).split(',').includes(c));
        body.notify = checked.length === NOTIFY_CHANNELS.length ? null : checked;
    }
    if (opts.days) {
        const days = number('days', v.days, 'Enter the days to preview (1 to 30)');
        body.days = days;
    }
    return { body, errors };
}

/** `ms` as a datetime-local value ('YYYY-MM-DDTHH:mm'), in the browser's own time. */
export function localInputTime(ms) {
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}

/** A number as the form shows it ('' for none). */
function text(value) {
    const n = num(value);
    return n === null || value === null || value === undefined ? '' : String(n);
}

/**
 * The form's values of a stored rule (GET /api/alerts/rules): what editing it starts from.
 * @param {any} rule
 * @returns {RuleValues}
 */
export function ruleValues(rule) {
    /** @type {RuleValues} */
    const v = Object.assign({}, DEFAULTS);
    v.ticker = String(rule.ticker || '');
    v.kind = Object.prototype.hasOwnProperty.call(KINDS, rule.kind) ? rule.kind : DEFAULTS.kind;
    v.threshold = text(rule.threshold);
    v.lower = text(rule.lower);
    v.upper = text(rule.upper);
    const seconds = num(rule.window_seconds);
    if (seconds !== null && rule.window_seconds !== null) {
        v.windowUnit = seconds % 3600 === 0 ? 'h' : seconds % 60 === 0 ? 'min' : 's';
        v.window = String(seconds / WINDOW_UNITS[v.windowUnit]);
    }
    if (rule.period !== null && rule.period !== undefined) v.period = text(rule.period);
    if (rule.interval) v.interval = String(rule.interval);
    v.evaluate = rule.evaluate === 'bar_close' ? 'bar_close' : 'tick';
    if (Object.prototype.hasOwnProperty.call(SESSIONS, rule.session)) v.session = rule.session;
    if (Object.prototype.hasOwnProperty.call(REARMS, rule.rearm)) v.rearm = rule.rearm;
    const cooldown = num(rule.cooldown_seconds);
    if (cooldown !== null && rule.cooldown_seconds !== null) v.cooldown = String(Math.round((cooldown / 60) * 1000) / 1000);
    const expires = rule.expires_at ? Date.parse(rule.expires_at) : NaN;
    v.expires = Number.isFinite(expires) ? localInputTime(expires) : '';
    v.notify = (Array.isArray(rule.notify) ? rule.notify : NOTIFY_CHANNELS).join(',');
    return v;
}

/** "30 s", "5 min", "1 h", "1 h 30 min". */
export function fmtDuration(seconds) {
    const s = Math.round(Number(seconds));
    if (!Number.isFinite(s)) return '—';
    if (s < 60) return s + ' s';
    if (s < 3600) return s % 60 === 0 ? s / 60 + ' min' : Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    const h = Math.floor(s / 3600);
    const m = Math.round((s % 3600) / 60);
    return h + ' h' + (m ? ' ' + m + ' min' : '');
}

/** The threshold as its level reads: "$150.00", "3.00%", "1.2M", "3×". */
export function fmtLevel(level, value) {
    if (level === 'percent' || level === 'move_percent') return fmtPercent(value).replace(/^\+/, '');
    if (level === 'volume') return fmtVolume(value);
    if (level === 'multiple') return (num(value) === null ? '—' : String(num(value))) + '×';
    return fmtMoney(value);
}

/**
 * A rule in words for the list: its condition ("Price above $150.00", "Enters channel $140.00 – $150.00",
 * "Rises by $2.00 within 5 min", "Close crosses above SMA 20 of 5m bars") and how it is evaluated
 * ("At 5m bar close · Regular hours · Fires on each new cross · Expires Dec 7, 4:00 PM ET").
 * @param {any} rule
 * @param {string | null} [zone] the exchange's time zone (expiry times)
 * @returns {{condition: string, details: string}}
 */
export function describeRule(rule, zone) {
    const kind = String(rule.kind || rule.alert_type || '');
    const shape = KINDS[kind];
    let condition;
    if (!shape) {
        condition = kind.replace(/_/g, ' ') + (rule.threshold === null || rule.threshold === undefined ? '' : ' ' + fmtMoney(rule.threshold));
    } else if (shape.channel) {
        condition = shape.label + ' ' + fmtMoney(rule.lower) + ' – ' + fmtMoney(rule.upper);
    } else if (shape.window) {
        condition = shape.label.replace(/ (amount|percent)$/, '') + ' ' + fmtLevel(shape.level, rule.threshold) + ' within ' + fmtDuration(rule.window_seconds);
    } else if (kind === 'volume_spike') {
        condition = 'Volume ' + fmtLevel('multiple', rule.threshold) + ' the ' + rule.period + '-bar average of ' + rule.interval + ' bars';
    } else if (shape.bars) {
        condition = 'Close ' + shape.label.toLowerCase().replace('sma', 'SMA') + ' ' + rule.period + ' of ' + rule.interval + ' bars';
    } else {
        condition = shape.label + ' ' + fmtLevel(shape.level, rule.threshold);
    }
    const details = [];
    if (rule.evaluate === 'bar_close' && !(shape && shape.bars)) details.push('At ' + rule.interval + ' bar close');
    if (rule.session) details.push(SESSIONS[rule.session] || String(rule.session));
    if (rule.rearm === 'cooldown') details.push('At most every ' + fmtDuration(rule.cooldown_seconds));
    else if (rule.rearm) details.push(REARMS[rule.rearm] || String(rule.rearm));
    const expires = rule.expires_at ? new Date(rule.expires_at) : null;
    if (expires && !Number.isNaN(expires.getTime())) details.push('Expires ' + fmtMarketTime(expires, zone || null));
    return { condition, details: details.join(' · ') };
}

/**
 * What a rule is doing (GET's `state`, `paused_by`, `triggers`), in words for its tags: `state` (armed,
 * paused, fired, expired), `text` ("armed", "paused by you", "paused: market halted", "paused: outside
 * regular hours", "expired", "fired"), `fired` ("fired 2 times"; '' before the first), and the action
 * its pause button offers: 'pause', 'resume' (paused by you, or fired once: re-arm) or null (expired:
 * edit it to give it a later expiry).
 * @param {any} rule
 * @returns {{state: string, text: string, fired: string, action: 'pause' | 'resume' | null}}
 */
export function ruleStatus(rule) {
    const triggers = num(rule.triggers) || 0;
    const fired = triggers > 0 ? 'fired ' + triggers + (triggers === 1 ? ' time' : ' times') : '';
    let state = String(rule.state || (rule.armed === false ? 'paused' : 'armed'));
    let text = state;
    /** @type {'pause' | 'resume' | null} */
    let action = rule.armed === false ? 'resume' : 'pause';
    if (state === 'paused') {
        const by = rule.paused_by || (rule.armed === false ? 'user' : null);
        if (by === 'user') text = 'paused by you';
        else if (by === 'halted') text = 'paused: market halted';
        else if (by === 'outside_session') text = 'paused: outside ' + (rule.session === 'extended' ? 'extended' : 'regular') + ' hours';
    } else if (state === 'expired') {
        action = null;
    } else if (state === 'fired') {
        action = 'resume';
    } else if (state !== 'armed') {
        state = 'armed';
        text = 'armed';
    }
    return { state, text, fired, action };
}

/** The API's field names the form has an input for; other 400s are shown under the form. */
export const FORM_FIELDS = ['ticker', 'kind', 'threshold', 'lower', 'upper', 'window_seconds', 'period', 'interval', 'evaluate', 'session', 'rearm', 'cooldown_seconds', 'expires_at', 'notify', 'days'];

/**
 * The errors of a 400 answer ({detail, extra: [{key, message}]}) by field; `other` holds those that name
 * no field of the form (or the answer's detail when it names none).
 * @param {{status?: number, data?: any}} res
 * @returns {{fields: Record<string, string>, other: string[]}}
 */
export function serverErrors(res) {
    /** @type {Record<string, string>} */
    const fields = {};
    const other = [];
    const data = res && res.data;
    const extra = data && Array.isArray(data.extra) ? data.extra : [];
    for (const item of extra) {
        if (!item || typeof item !== 'object' || !item.message) continue;
        const key = typeof item.key === 'string' ? item.key.replace(/^\$\./, '') : '';
        const message = String(item.message);
        if (FORM_FIELDS.includes(key)) fields[key] = fields[key] ? fields[key] + '; ' + message : message;
        else other.push(key ? key + ': ' + message : message);
    }
    if (!extra.length && data && data.detail) other.push(String(data.detail));
    return { fields, other };
}

/**
 * What the session selector says about the market now, or null when nothing is to be said: a rule of
 * the regular session made while the market is closed waits for the open; one of extended hours waits
 * while the market is closed overnight; every rule pauses while trading is halted.
 * @param {string} session 'regular' | 'extended' | 'any'
 * @param {{status?: string, next_open?: string | null} | null} market the latest market_status
 * @param {string | null} [zone] the exchange's time zone
 */
export function sessionHint(session, market, zone) {
    const status = market && market.status;
    if (!status) return null;
    if (status === 'halted') return 'Trading is halted: alerts pause until it resumes.';
    const opens = market.next_open ? new Date(market.next_open) : null;
    const when = opens && !Number.isNaN(opens.getTime()) ? ' (opens ' + fmtMarketTime(opens, zone || null) + ')' : '';
    if (session === 'regular' && status !== 'open') {
        const now = status === 'pre_market' ? 'It is pre-market now' : status === 'after_hours' ? 'It is after hours now' : 'The market is closed now';
        return now + ': this alert waits for the regular session' + when + '. Choose "Extended hours" or "Any time" to watch now.';
    }
    if (session === 'extended' && status === 'closed') {
        return 'The market is closed now: this alert waits for extended-hours trading. Choose "Any time" to watch now.';
    }
    return null;
}
