// @ts-check
// Tests of the alert rules (web/static/js/dashboard/rule-kinds.js and rules.js) in Node: the body each
// kind sends, the errors found before asking, a stored rule back into the form, a rule and its state in
// words, the server's 400s by field, the session hint; and AlertRules over the real REST client with a
// stubbed fetch: create, edit, pause and resume, and the preview (POST /api/alerts/preview) whose fires go
// to the chart as marks, and the list read again when a halt begins or ends until the server says it. The form and the list in a page are driven in Chromium by
// tests/browser/test_alert_rules.py.
// Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { Api } from '../../web/static/js/dashboard/rest.js';
import {
    DEFAULTS, KINDS, describeRule, kindFields, ruleBody, ruleStatus, ruleValues, serverErrors, sessionHint,
} from '../../web/static/js/dashboard/rule-kinds.js';
import { AlertRules, STATUS_REREAD_MS } from '../../web/static/js/dashboard/rules.js';

const NY = 'America/New_York';

/** The fields of a body beside those every rule has. */
const own = (body) => Object.keys(body).filter((k) => !['ticker', 'kind', 'evaluate', 'session', 'rearm'].includes(k)).sort();

test('rule body: each kind sends only its fields, with the defaults a new rule has', () => {
    assert.deepEqual(ruleBody({ ticker: ' aapl ', kind: 'price_above', threshold: '150' }), {
        body: { ticker: 'AAPL', kind: 'price_above', threshold: 150, evaluate: 'tick', session: 'regular', rearm: 'recross' },
        errors: {},
    });
    const values = { ticker: 'MSFT', threshold: '2', lower: '100', upper: '110', window: '90', windowUnit: 's', period: '50', interval: '15m' };
    const expected = {
        price: ['threshold'], percent: ['threshold'], volume: ['threshold'],
        channel: ['lower', 'upper'], window: ['threshold', 'window_seconds'], sma: ['interval', 'period'], spike: ['interval', 'period', 'threshold'],
    };
    for (const [kind, shape] of Object.entries(KINDS)) {
        const { body, errors } = ruleBody({ ...values, kind });
        assert.deepEqual(errors, {}, kind);
        const group = shape.channel ? 'channel' : shape.window ? 'window' : kind === 'volume_spike' ? 'spike' : shape.bars ? 'sma' : 'price';
        assert.deepEqual(own(body), expected[group], kind);
        assert.equal(body.evaluate, shape.bars ? 'bar_close' : 'tick', kind + ': the bar kinds are evaluated at bar closes');
        const shown = kindFields(kind, 'tick');
        assert.equal(shown.evaluate, !shape.bars, kind + ': only the other kinds let the trader choose');
    }
    assert.equal(ruleBody({ ...values, kind: 'moving_up', window: '1.5', windowUnit: 'h' }).body.window_seconds, 5400);
    assert.equal(ruleBody({ ...values, kind: 'moving_up', window: '5', windowUnit: 'min' }).body.window_seconds, 300);
    // any kind at the close of its bars; a cool-down in minutes; an expiry in the browser's time
    const full = ruleBody({
        ticker: 'SPY', kind: 'crossing', threshold: '500.5', evaluate: 'bar_close', interval: '1h', session: 'any',
        rearm: 'cooldown', cooldown: '2.5', expires: '2030-01-02T03:04',
    }).body;
    assert.deepEqual(full, {
        ticker: 'SPY', kind: 'crossing', threshold: 500.5, evaluate: 'bar_close', interval: '1h', session: 'any',
        rearm: 'cooldown', cooldown_seconds: 150, expires_at: new Date(2030, 0, 2, 3, 4).toISOString(),
    });
    // an edit clears what the kind has no use for; a preview says over how many days
    const patch = ruleBody({ ticker: 'SPY', kind: 'entering_channel', lower: '1', upper: '2' }, { full: true }).body;
    assert.deepEqual(patch, {
        ticker: 'SPY', kind: 'entering_channel', lower: 1, upper: 2, evaluate: 'tick', session: 'regular', rearm: 'recross',
        threshold: null, window_seconds: null, period: null, interval: null, cooldown_seconds: null, expires_at: null,
    });
    assert.equal(ruleBody({ ticker: 'SPY', threshold: '1', days: '12' }, { days: true }).body.days, 12);
    assert.equal(DEFAULTS.session, 'regular', 'a new rule watches the regular session');
});

test('rule body: what is missing or not a number is named by field before the server is asked', () => {
    assert.deepEqual(ruleBody({ kind: 'price_above' }).errors, { ticker: 'Enter a ticker symbol, e.g. AAPL', threshold: 'Enter the price level' });
    assert.match(ruleBody({ ticker: 'A$', threshold: '1' }).errors.ticker, /^Not a ticker symbol/);
    assert.deepEqual(ruleBody({ ticker: 'A', kind: 'exiting_channel', lower: 'abc' }).errors, { lower: 'Enter a number', upper: 'Enter the channel\'s upper price' });
    assert.deepEqual(ruleBody({ ticker: 'A', kind: 'moving_down_percent', threshold: '1', window: '' }).errors, { window_seconds: 'Enter the time window' });
    assert.deepEqual(ruleBody({ ticker: 'A', kind: 'sma_cross_down', period: ' ' }).errors, { period: 'Enter how many bars to average' });
    assert.deepEqual(ruleBody({ ticker: 'A', threshold: '1', rearm: 'cooldown', cooldown: '' }).errors, { cooldown_seconds: 'Enter the cool-down in minutes' });
    assert.deepEqual(ruleBody({ ticker: 'A', threshold: '1', expires: 'soon' }).errors, { expires_at: 'Enter a date and time, or leave it empty' });
    assert.deepEqual(ruleBody({ ticker: 'A', kind: 'nope' }).errors, { kind: 'Choose a condition', threshold: 'Enter the price level' });
    assert.deepEqual(ruleBody({ ticker: 'A', threshold: '1', days: '' }, { days: true }).errors, { days: 'Enter the days to preview (1 to 30)' });
    // ranges are the server's to check (its 400 names the field): sent as typed
    assert.deepEqual(ruleBody({ ticker: 'A', kind: 'entering_channel', lower: '200', upper: '100' }).errors, {});
});

test('rule values: a stored rule fills the form so that saving it unchanged sends the same rule', () => {
    const stored = [
        { id: 1, ticker: 'AAPL', kind: 'price_above', threshold: 150.25, rearm: 'once', cooldown_seconds: null, lower: null, upper: null, window_seconds: null, period: null, interval: null, evaluate: 'tick', session: 'regular', expires_at: null, notify: null },
        { id: 2, ticker: 'TSLA', kind: 'exiting_channel', threshold: null, rearm: 'cooldown', cooldown_seconds: 90, lower: 200, upper: 250.5, window_seconds: null, period: null, interval: '5m', evaluate: 'bar_close', session: 'extended', expires_at: '2030-06-01T20:00:00.000Z', notify: ['push', 'email'] },
        { id: 3, ticker: 'NVDA', kind: 'moving_down_percent', threshold: 1.5, rearm: 'recross', cooldown_seconds: null, lower: null, upper: null, window_seconds: 7200, period: null, interval: null, evaluate: 'tick', session: 'any', expires_at: null, notify: [] },
        { id: 4, ticker: 'SPY', kind: 'moving_up', threshold: 2, rearm: 'once', cooldown_seconds: null, lower: null, upper: null, window_seconds: 45, period: null, interval: null, evaluate: 'tick', session: 'any', expires_at: null, notify: ['webhook'] },
        { id: 5, ticker: 'QQQ', kind: 'volume_spike', threshold: 3, rearm: 'recross', cooldown_seconds: null, lower: null, upper: null, window_seconds: null, period: 20, interval: '5m', evaluate: 'bar_close', session: 'regular', expires_at: null, notify: null },
    ];
    for (const rule of stored) {
        const values = ruleValues(rule);
        const { body, errors } = ruleBody(values, { full: true });
        assert.deepEqual(errors, {}, rule.kind);
        for (const [key, value] of Object.entries(body)) assert.deepEqual(value, rule[key], rule.kind + ' ' + key);
    }
    assert.deepEqual([ruleValues(stored[2]).window, ruleValues(stored[2]).windowUnit], ['2', 'h']);
    assert.deepEqual([ruleValues(stored[3]).window, ruleValues(stored[3]).windowUnit], ['45', 's']);
    assert.equal(ruleValues(stored[1]).cooldown, '1.5');
    // "Send to": every channel checked is every destination (null); none checked: only the page
    assert.equal(ruleValues(stored[0]).notify, 'push,webhook,email');
    assert.equal(ruleBody({ ticker: 'A', threshold: '1', notify: 'push,webhook,email' }).body.notify, null);
    assert.deepEqual(ruleBody({ ticker: 'A', threshold: '1', notify: 'email,push' }).body.notify, ['push', 'email']);
    assert.deepEqual(ruleBody({ ticker: 'A', threshold: '1', notify: '' }).body.notify, []);
    assert.equal('notify' in ruleBody({ ticker: 'A', threshold: '1' }).body, false, 'not given: not sent');
    assert.equal('notify' in ruleBody({ ticker: 'A', threshold: '1', notify: '' }, { days: true }).body, false, 'a preview sends nowhere');
});

test('rule in words: each kind\'s condition and how it is evaluated', () => {
    const base = { ticker: 'AAPL', evaluate: 'tick', session: 'regular', rearm: 'recross' };
    const cond = (rule) => describeRule({ ...base, ...rule }, NY).condition;
    assert.equal(cond({ kind: 'price_above', threshold: 1 }), 'Price above $1.00');
    assert.equal(cond({ kind: 'crossing', threshold: 150.5 }), 'Price crosses $150.50');
    assert.equal(cond({ kind: 'entering_channel', lower: 140, upper: 150 }), 'Enters channel $140.00 – $150.00');
    assert.equal(cond({ kind: 'moving_up', threshold: 2, window_seconds: 300 }), 'Rises by $2.00 within 5 min');
    assert.equal(cond({ kind: 'moving_down_percent', threshold: 1.5, window_seconds: 5400 }), 'Falls by 1.50% within 1 h 30 min');
    assert.equal(cond({ kind: 'sma_cross_up', period: 20, interval: '5m' }), 'Close crosses above SMA 20 of 5m bars');
    assert.equal(cond({ kind: 'volume_spike', threshold: 3, period: 20, interval: '1m' }), 'Volume 3× the 20-bar average of 1m bars');
    assert.equal(cond({ kind: 'change_percent_below', threshold: -2 }), 'Change % below −2.00%');
    assert.equal(cond({ kind: 'volume_above', threshold: 1500000 }), 'Volume above 1.5M');
    assert.equal(describeRule({ ...base, kind: 'price_above', threshold: 1 }, NY).details, 'Regular hours · Fires on each new cross');
    const details = describeRule({
        ...base, kind: 'price_below', threshold: 1, evaluate: 'bar_close', interval: '15m', session: 'any',
        rearm: 'cooldown', cooldown_seconds: 600, expires_at: '2031-03-04T21:00:00Z',
    }, NY).details;
    assert.equal(details, 'At 15m bar close · Any time · At most every 10 min · Expires Mar 4, 4:00 PM ET');
    assert.equal(describeRule({ ...base, kind: 'sma_cross_down', period: 5, interval: '1h', evaluate: 'bar_close', rearm: 'once' }, NY).details, 'Regular hours · Fires once');
});

test('rule state in words: armed, fired n times, expired, paused by you, by a halt, outside its session', () => {
    const status = (rule) => {
        const s = ruleStatus(rule);
        return [s.state, s.text, s.fired, s.action];
    };
    assert.deepEqual(status({ armed: true, state: 'armed', paused_by: null, triggers: 0 }), ['armed', 'armed', '', 'pause']);
    assert.deepEqual(status({ armed: true, state: 'armed', paused_by: null, triggers: 1 }), ['armed', 'armed', 'fired 1 time', 'pause']);
    assert.deepEqual(status({ armed: false, state: 'fired', paused_by: null, triggers: 3 }), ['fired', 'fired', 'fired 3 times', 'resume']);
    assert.deepEqual(status({ armed: false, state: 'expired', paused_by: null, triggers: 0 }), ['expired', 'expired', '', null]);
    assert.deepEqual(status({ armed: true, state: 'expired', paused_by: null, triggers: 2 }), ['expired', 'expired', 'fired 2 times', null]);
    assert.deepEqual(status({ armed: false, state: 'paused', paused_by: 'user', triggers: 0 }), ['paused', 'paused by you', '', 'resume']);
    assert.deepEqual(status({ armed: true, state: 'paused', paused_by: 'halted', triggers: 0 }), ['paused', 'paused: market halted', '', 'pause']);
    assert.deepEqual(status({ armed: true, state: 'paused', paused_by: 'outside_session', session: 'regular', triggers: 0 }), ['paused', 'paused: outside regular hours', '', 'pause']);
    assert.deepEqual(status({ armed: true, state: 'paused', paused_by: 'outside_session', session: 'extended', triggers: 0 }), ['paused', 'paused: outside extended hours', '', 'pause']);
    // a server from before states: armed or not
    assert.deepEqual(status({ armed: false, triggers: 0 }), ['paused', 'paused by you', '', 'resume']);
});

test('server errors: a 400 by field, and what names no field of the form', () => {
    const res = {
        status: 400,
        data: {
            detail: 'Validation failed',
            extra: [
                { key: 'upper', message: 'must be greater than lower', source: 'body' },
                { key: 'threshold', message: 'Expected `float | null`, got `str`', source: 'body' },
                { key: 'armed', message: 'the rule expired: give it a later expires_at', source: 'body' },
                { message: 'something else' },
            ],
        },
    };
    assert.deepEqual(serverErrors(res), {
        fields: { upper: 'must be greater than lower', threshold: 'Expected `float | null`, got `str`' },
        other: ['armed: the rule expired: give it a later expires_at', 'something else'],
    });
    assert.deepEqual(serverErrors({ status: 409, data: { detail: 'too many rules (max 100)' } }), { fields: {}, other: ['too many rules (max 100)'] });
    assert.deepEqual(serverErrors({ status: 0, data: null }), { fields: {}, other: [] });
});

test('session hint: a regular-hours rule made while the market is closed waits for the open, and a halt pauses every rule', () => {
    const closed = { status: 'closed', next_open: '2026-12-07T14:30:00Z' };
    assert.match(sessionHint('regular', closed, NY), /^The market is closed now: this alert waits for the regular session \(opens .*9:30 AM ET\)\. Choose "Extended hours" or "Any time" to watch now\.$/);
    assert.match(sessionHint('regular', { status: 'pre_market' }, NY), /^It is pre-market now: this alert waits for the regular session\./);
    assert.match(sessionHint('regular', { status: 'after_hours' }, NY), /^It is after hours now/);
    assert.match(sessionHint('extended', closed, NY), /waits for extended-hours trading/);
    assert.equal(sessionHint('extended', { status: 'after_hours' }, NY), null);
    assert.equal(sessionHint('regular', { status: 'open' }, NY), null);
    assert.equal(sessionHint('any', closed, NY), null);
    assert.equal(sessionHint('any', { status: 'halted' }, NY), 'Trading is halted: alerts pause until it resumes.');
    assert.equal(sessionHint('regular', null, NY), null, 'nothing said before the market status is known');
});

// ───────────────────────────── AlertRules over a stubbed fetch ─────────────────────────────

/** Just enough of an element for the rule list: children, text, dataset and attributes. */
class Node {
    constructor(tag) {
        this.tag = tag;
        this.children = [];
        this.dataset = {};
        this.attributes = {};
        this.className = '';
        this.hidden = false;
        this._text = '';
    }

    get textContent() {
        return this._text + this.children.map((c) => c.textContent).join(' ');
    }

    set textContent(value) {
        this._text = String(value);
        this.children = [];
    }

    setAttribute(name, value) {
        this.attributes[name] = String(value);
    }

    appendChild(child) {
        this.children.push(child);
        return child;
    }

    append(...nodes) {
        for (const n of nodes) this.appendChild(n);
    }

    replaceChildren() {
        this.children = [];
    }

    /** Every descendant. */
    all() {
        return this.children.flatMap((c) => [c, ...c.all()]);
    }
}

/**
 * AlertRules on the real REST client, `fetch` answering from `answers` (in turn: [status, body] or an
 * Error to throw), the form a recorder that reads `values`.
 */
function makeRules(answers, values = {}) {
    const g = /** @type {any} */ (globalThis);
    g.document = { createElement: (tag) => new Node(tag) };
    const requests = [];
    g.fetch = async (url, init) => {
        requests.push({ url, method: init.method, headers: init.headers, body: init.body === undefined ? undefined : JSON.parse(init.body) });
        const answer = answers.shift();
        if (answer instanceof Error) throw answer;
        const [status, body] = answer;
        return { ok: status >= 200 && status < 300, status, text: async () => (body === undefined ? '' : JSON.stringify(body)) };
    };
    const shown = { errors: [], marks: [], edits: [], resets: 0, timers: /** @type {[() => void, number][]} */ ([]) };
    const form = {
        editing: null,
        read: () => ({ ...DEFAULTS, ...values }),
        showErrors: (errors) => {
            shown.errors.push(errors);
            return [];
        },
        clearErrors() {},
        edit(id, vals) {
            form.editing = id;
            shown.edits.push([id, vals]);
        },
        reset() {
            form.editing = null;
            shown.resets++;
        },
        setMarket() {},
    };
    const dom = { ruleNote: new Node('p'), ruleError: new Node('p'), ruleList: new Node('ul'), rulesEmpty: new Node('p'), rulePreviewNote: new Node('p') };
    const rules = new AlertRules({
        api: new Api('trader-1', () => null, undefined),
        form: /** @type {any} */ (form),
        dom,
        frame: { set: (_key, fn) => fn() },
        showError: (node, text) => {
            node.hidden = !text;
            node.textContent = text || '';
        },
        zone: () => NY,
        showMarks: async (ticker, marks) => shown.marks.push([ticker, marks]),
        later: (fn, ms) => shown.timers.push([fn, ms]),
        destroyed: () => false,
    });
    return { rules, requests, shown, dom, form };
}

const view = (fields) => ({
    id: 7, ticker: 'AAPL', kind: 'price_above', threshold: 1, rearm: 'recross', cooldown_seconds: null, lower: null, upper: null,
    window_seconds: null, period: null, interval: null, evaluate: 'tick', session: 'any', expires_at: null, armed: true,
    state: 'armed', paused_by: null, condition_met: null, triggers: 0, ...fields,
});

test('preview: the form\'s rule and its days go to POST /api/alerts/preview; the fires are said and marked on the chart', async () => {
    const fires = [
        { at: '2026-12-04T15:01:00Z', price: 151.2, message: 'AAPL above 150' },
        { at: '2026-12-02T19:45:00Z', price: 150.4, message: 'AAPL above 150' },
    ];
    const { rules, requests, shown, dom } = makeRules(
        [[200, { fires, evaluated: { bars: 1950, from: '2026-11-30T14:30:00Z', to: '2026-12-04T21:00:00Z' } }]],
        { ticker: 'aapl', kind: 'price_above', threshold: '150', session: 'any', days: '5' },
    );
    const result = await rules.preview();
    assert.equal(result.ok, true);
    assert.equal(requests.length, 1);
    assert.deepEqual([requests[0].url, requests[0].method, requests[0].headers['X-User-Id']], ['/api/alerts/preview', 'POST', 'trader-1']);
    assert.deepEqual(requests[0].body, { ticker: 'AAPL', kind: 'price_above', threshold: 150, evaluate: 'tick', session: 'any', rearm: 'recross', days: 5 });
    assert.deepEqual(shown.marks, [['AAPL', [
        { ms: Date.parse('2026-12-02T19:45:00Z'), price: 150.4, text: '' },
        { ms: Date.parse('2026-12-04T15:01:00Z'), price: 151.2, text: '' },
    ]]], 'in time order');
    assert.equal(dom.rulePreviewNote.hidden, false);
    assert.match(dom.rulePreviewNote.textContent, /^Would have fired 2 times in the last 5 days \(1,950 bars\) \(marked on the chart\)\. Latest: \S.* 10:01 AM ET at \$151\.20; \S.* 2:45 PM ET at \$150\.40\.$/);
});

test('preview: no fire, a field the server refuses, a server without the endpoint, no server, and what is missing locally', async () => {
    let env = makeRules([[200, { fires: [], evaluated: { bars: 390 } }]], { ticker: 'SPY', threshold: '999', days: '1' });
    assert.deepEqual(await env.rules.preview(), { ok: true, fires: [] });
    assert.equal(env.dom.rulePreviewNote.textContent, 'Would not have fired in the last day (390 bars).');
    assert.deepEqual(env.shown.marks, [['SPY', []]], 'no marks: the chart is not opened for nothing (dashboard._showMarks)');

    env = makeRules([[400, { detail: 'Validation failed', extra: [{ key: 'days', message: 'must be from 1 to 30' }, { key: 'upper', message: 'must be greater than lower' }] }]],
        { ticker: 'SPY', kind: 'entering_channel', lower: '2', upper: '1', days: '31' });
    const refused = await env.rules.preview();
    assert.equal(refused.ok, false);
    assert.deepEqual(env.shown.errors.at(-1), { days: 'must be from 1 to 30', upper: 'must be greater than lower' }, 'next to their fields');
    assert.equal(env.dom.ruleError.hidden, true, 'nothing left to say under the form');
    assert.deepEqual(env.shown.marks, []);

    env = makeRules([[404, { status_code: 404, detail: 'Not Found' }]], { ticker: 'SPY', threshold: '1' });
    assert.equal((await env.rules.preview()).ok, false);
    assert.equal(env.dom.rulePreviewNote.textContent, 'Preview is not available on this server yet.');

    env = makeRules([new TypeError('Failed to fetch')], { ticker: 'SPY', threshold: '1' });
    assert.equal((await env.rules.preview()).ok, false);
    assert.equal(env.dom.ruleError.textContent, 'Could not preview the alert: the server cannot be reached');

    env = makeRules([], { ticker: 'SPY', threshold: '' });
    const local = await env.rules.preview();
    assert.deepEqual([local.ok, env.requests.length], [false, 0]);
    assert.deepEqual(env.shown.errors.at(-1), { threshold: 'Enter the price level' });
});

test('alert rules: create, edit (PATCH with the whole rule), pause and resume, each answer listed with its state', async () => {
    const { rules, requests, shown, dom, form } = makeRules([
        [201, view({})],
        [200, view({ kind: 'entering_channel', threshold: null, lower: 100, upper: 120 })],
        [200, view({ kind: 'entering_channel', threshold: null, lower: 100, upper: 120, armed: false, state: 'paused', paused_by: 'user' })],
        [200, view({ kind: 'entering_channel', threshold: null, lower: 100, upper: 120, triggers: 1 })],
        [400, { detail: 'Validation failed', extra: [{ key: 'armed', message: 'the rule expired: give it a later expires_at' }] }],
    ]);
    const created = await rules.create({ ticker: 'AAPL', kind: 'price_above', threshold: 1, session: 'any' });
    assert.equal(created.ok, true);
    assert.deepEqual(requests[0].body, { ticker: 'AAPL', kind: 'price_above', threshold: 1, evaluate: 'tick', session: 'any', rearm: 'recross' });
    const item = () => dom.ruleList.children[0];
    assert.match(item().textContent, /^AAPL Price above \$1\.00 Any time · Fires on each new cross armed Edit Pause ×$/);

    assert.equal(rules.edit(7), true);
    assert.deepEqual(shown.edits[0], ['7', ruleValues(view({}))]);
    assert.equal(item().attributes['aria-current'], 'true', 'the rule being edited is marked');
    form.read = () => ({ ...DEFAULTS, ticker: 'AAPL', kind: 'entering_channel', threshold: '1', lower: '100', upper: '120', session: 'any' });
    assert.equal((await rules.submit()).ok, true);
    assert.deepEqual([requests[1].method, requests[1].url], ['PATCH', '/api/alerts/rules/7']);
    assert.equal(requests[1].body.threshold, null, 'a channel has no threshold: cleared');
    assert.equal(shown.resets, 1, 'the form is a new rule again');
    assert.match(item().textContent, /Enters channel \$100\.00 – \$120\.00/);

    await rules.setArmed(7, false);
    assert.deepEqual(requests[2].body, { armed: false });
    assert.match(item().textContent, /paused by you Edit Resume ×$/);
    const resume = item().all().find((n) => n.dataset.ruleAction === 'resume');
    assert.equal(resume.attributes['aria-label'], 'Resume alert AAPL Enters channel $100.00 – $120.00');
    await rules.setArmed(7, true);
    assert.match(item().textContent, /armed fired 1 time Edit Pause ×$/);

    const refused = await rules.setArmed(7, true);
    assert.equal(refused.ok, false);
    assert.equal(dom.ruleError.textContent, 'armed: the rule expired: give it a later expires_at');
});

test('alert rules: a 400 on create goes next to its fields; a server without the API says so', async () => {
    let env = makeRules([[400, { detail: 'Validation failed', extra: [{ key: 'upper', message: 'must be greater than lower', source: 'body' }] }]]);
    const result = await env.rules.create({ ticker: 'AAPL', kind: 'entering_channel', lower: '200', upper: '100' });
    assert.deepEqual([result.ok, result.error], [false, 'must be greater than lower']);
    assert.deepEqual(env.shown.errors.at(-1), { upper: 'must be greater than lower' });
    assert.equal(env.dom.ruleError.hidden, true);
    assert.equal(env.rules.rules.size, 0);

    env = makeRules([[404, { status_code: 404 }]]);
    assert.equal((await env.rules.create({ ticker: 'AAPL', threshold: '1' })).ok, false);
    assert.equal(env.dom.ruleNote.textContent, 'Alert rules are not available on this server yet.');
    assert.equal(env.rules.available, false);
});

test('alert rules: a halt and its end read the list again until the server says it, a few times at most', async () => {
    const armed = view({});
    const held = view({ state: 'paused', paused_by: 'halted' });
    const mine = view({ id: 8, armed: false, state: 'paused', paused_by: 'user' }); // not held: paused by its owner
    const { rules, requests, shown, dom } = makeRules([
        [200, { rules: [armed, mine] }],
        [200, { rules: [armed, mine] }], // the evaluating instance has not read the halt yet
        [200, { rules: [held, mine] }],
        [200, { rules: [held, mine] }], // the halt ends: not said yet
        ...STATUS_REREAD_MS.map(() => [200, { rules: [held, mine] }]), // ... nor after every re-read
        [200, { rules: [armed, mine] }], // halted again: not said yet
        [200, { rules: [armed, mine] }], // open again
    ]);
    const item = () => dom.ruleList.children[0];
    await rules.load();
    rules.onMarketStatus({ status: 'open' }); // the first status: nothing changed
    assert.equal(requests.length, 1);

    rules.onMarketStatus({ status: 'halted' });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(requests.length, 2);
    assert.match(item().textContent, / armed Edit/);
    assert.deepEqual(shown.timers.map(([, ms]) => ms), [STATUS_REREAD_MS[0]]);
    await shown.timers.shift()[0]();
    assert.equal(requests.length, 3);
    assert.match(item().textContent, / paused: market halted Edit Pause/);
    assert.equal(shown.timers.length, 0, 'the answer says the halt: no more reading');

    rules.onMarketStatus({ status: 'open' });
    await new Promise((resolve) => setImmediate(resolve));
    for (const ms of STATUS_REREAD_MS) {
        assert.deepEqual(shown.timers.map(([, wait]) => wait), [ms]);
        await shown.timers.shift()[0]();
    }
    assert.equal(requests.length, 4 + STATUS_REREAD_MS.length);
    assert.equal(shown.timers.length, 0, 'then the list is left as the server says (a cluster instance that knows no halt)');
    assert.match(item().textContent, / paused: market halted /);

    // a re-read for a status that changed again since is not done: the newer change reads the list
    rules.onMarketStatus({ status: 'halted' });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(shown.timers.length, 1, 'the list does not say the halt yet');
    rules.onMarketStatus({ status: 'open' });
    await new Promise((resolve) => setImmediate(resolve));
    const reads = requests.length;
    await shown.timers.shift()[0]();
    assert.equal(requests.length, reads);
});
