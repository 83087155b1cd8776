// @ts-check
// Tests of the dashboard (web/static/js/dashboard/) in Node: its modules are imported with a minimal
// stand-in DOM; its parts (AlertFeed, Watchlist, ConnectionStatus) are exercised through their own
// interfaces, and RealtimeDashboard's client wiring on an instance with the real WebSocketClient (fake
// socket and timers). The full page is covered by tests/browser/.
// Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { RealtimeDashboard } from '../../web/static/js/dashboard/dashboard.js';
import { ActivityFeed } from '../../web/static/js/dashboard/activity.js';
import { AlertFeed, alertItem } from '../../web/static/js/dashboard/alerts.js';
import { SignIn } from '../../web/static/js/dashboard/signin.js';
import { ConnectionStatus } from '../../web/static/js/dashboard/connection-status.js';
import { GapNotice } from '../../web/static/js/dashboard/gap-notice.js';
import { MAX_PATTERN_CHIPS, Watchlist } from '../../web/static/js/dashboard/watchlist.js';
import { setup } from './fakes.js';

/** Just enough of a DOM element for the dashboard's feed items and table rows. */
class FakeNode {
    constructor(tag) {
        this.tagName = String(tag).toUpperCase();
        this.children = [];
        this.parent = null;
        this.attributes = {};
        this.dataset = {};
        this.style = {};
        this.hidden = false;
        this.className = '';
        this.title = '';
        this.isRoot = false; // the page itself
        /** @type {any} */
        this.classList = null;
        this._text = '';
    }

    get textContent() {
        return this._text + this.children.map((c) => c.textContent).join('');
    }

    set textContent(value) {
        this.children = [];
        this._text = String(value);
    }

    get isConnected() {
        let node = this;
        while (node.parent) node = node.parent;
        return node.isRoot === true;
    }

    setAttribute(name, value) {
        this.attributes[name] = String(value);
    }

    getAttribute(name) {
        return name in this.attributes ? this.attributes[name] : null;
    }

    appendChild(child) {
        if (child.parent) child.remove();
        child.parent = this;
        this.children.push(child);
        return child;
    }

    append(...nodes) {
        for (const n of nodes) this.appendChild(n);
    }

    remove() {
        if (!this.parent) return;
        const siblings = this.parent.children;
        siblings.splice(siblings.indexOf(this), 1);
        this.parent = null;
    }

    contains(node) {
        for (let n = node; n; n = n.parent) if (n === this) return true;
        return false;
    }
}

/** The RealtimeDashboard class, with a stand-in document for the elements it makes (the page is not started). */
function loadDashboardClass() {
    /** @type {any} */ (globalThis).document = {
        readyState: 'complete',
        createElement: (/** @type {string} */ tag) => new FakeNode(tag),
        addEventListener() {},
    };
    assert.equal(typeof RealtimeDashboard, 'function');
    return RealtimeDashboard;
}

/** A stand-in for a collaborator's method the test must not reach. */
function unused(name) {
    return () => {
        throw new Error(name + ' is not used here');
    };
}

/**
 * The page's AlertFeed with a real ActivityFeed, and recorders for toasts, beeps and row highlights
 * (sound on, no alert rules API).
 */
function makeAlertFeed() {
    loadDashboardClass(); // the stand-in document: ActivityFeed makes its items' elements
    const notified = { toasts: [], beeps: 0, highlights: [] };
    const activity = new ActivityFeed({ dom: {}, frame: { set() {} }, lastSeen: () => null, zone: () => 'America/New_York' });
    const feed = new AlertFeed({
        api: { get: unused('api.get') },
        activity,
        toasts: { show: (item) => notified.toasts.push(item.title) },
        sound: { alert: () => notified.beeps++ },
        watchlist: { showPattern() {}, highlight: (ticker, effect) => notified.highlights.push(ticker + ':' + effect) },
        rules: { available: false, load: unused('rules.load') },
        later: unused('later'),
        destroyed: () => false,
    });
    return { feed, activity, notified };
}

/**
 * A dashboard instance without its constructor (which binds the whole page): what its client event
 * handlers use, on a real WebSocketClient (fake socket and timers).
 */
function makeDashboard() {
    const RealtimeDashboard = loadDashboardClass();
    const env = setup();
    const d = Object.create(RealtimeDashboard.prototype);
    const gapDom = { gapNotice: new FakeNode('div'), gapText: new FakeNode('span'), gapDismiss: new FakeNode('button') };
    gapDom.gapNotice.hidden = true;
    Object.assign(d, {
        ws: env.client,
        writer: env.client.writer, // the page's DOM writer, shared with the client as the page does
        destroyed: false,
        _offs: [],
        gapDom: gapDom,
        gapNotice: new GapNotice({ dom: gapDom, frame: { set: (_key, fn) => fn() } }),
    });
    return { d, env };
}

function trigger(alertId, extra = {}) {
    return {
        type: 'alert_trigger',
        ticker: 'AAPL',
        alert_type: 'breakout',
        alert_id: alertId,
        trigger_price: 150,
        current_price: 150.25,
        message: 'AAPL breaking out',
        timestamp: '2025-11-18T10:30:00.000Z',
        channel: 'alerts:user:u1',
        ...extra,
    };
}

test('dashboard: a live alert trigger with an alert_id already listed neither toasts nor beeps', () => {
    const { feed, activity, notified } = makeAlertFeed();
    feed.onAlertTrigger(trigger('r1', { seq: 1 }), { replayed: false });
    assert.equal(notified.toasts.length, 1);
    assert.equal(notified.beeps, 1);
    assert.equal(activity.size, 1);

    // the same trigger again (e.g. also listed from /api/alerts/events, or sent twice): already shown
    feed.onAlertTrigger(trigger('r1', { seq: 2, timestamp: '2025-11-18T10:30:01.000Z' }), { replayed: false });
    assert.equal(activity.size, 1);
    assert.equal(notified.toasts.length, 1, 'no second toast for a duplicate alert_id');
    assert.equal(notified.beeps, 1, 'no second beep for a duplicate alert_id');
    assert.deepEqual(notified.highlights, ['AAPL:alert']);

    // a new trigger notifies
    feed.onAlertTrigger(trigger('r2', { seq: 3 }), { replayed: false });
    assert.equal(activity.size, 2);
    assert.equal(notified.toasts.length, 2);
    assert.equal(notified.beeps, 2);
});

test('dashboard: a trigger first listed as a past event, then received live, does not notify', () => {
    const { feed, activity, notified } = makeAlertFeed();
    activity.add(alertItem(trigger('r9'), true)); // what loadEvents() does
    feed.onAlertTrigger(trigger('r9', { seq: 4 }), { replayed: false });
    assert.equal(activity.size, 1);
    assert.deepEqual(notified.toasts, []);
    assert.equal(notified.beeps, 0);
});

/**
 * The page's Watchlist on a table of the stand-in page, with the real WebSocketClient and its DOM writer;
 * `frame` stands in for the frame batch.
 * @param {{set: (key: any, fn: () => void) => void, delete: (key: any) => void}} [frame]
 */
function makeWatchlist(frame = { set() {}, delete() {} }) {
    loadDashboardClass();
    const env = setup();
    const page = new FakeNode('body');
    page.isRoot = true;
    const table = page.appendChild(new FakeNode('tbody'));
    const watchlist = new Watchlist({
        api: { get: unused('api.get'), post: unused('api.post'), del: unused('api.del') },
        client: env.client,
        dom: { rows: table },
        writer: env.client.writer, // the page's DOM writer, shared with the client as the page does
        frame,
        chart: { ticker: null, onPrice() {}, close: unused('chart.close') },
        showError: unused('showError'),
        userId: () => 'u1',
        destroyed: () => false,
    });
    return { watchlist, env, table };
}

/** A row's state as Watchlist keeps it, on a fake table row with the given cells. */
function rowOf(ticker, el, cells) {
    return { ticker, el, cells, points: [], times: [], prices: [], last: null, trend: /** @type {const} */ ('flat'), flash: null, flashParity: 0 };
}

test('dashboard: removing a ticker row evicts its cells from the client cache', () => {
    const { watchlist, env, table } = makeWatchlist();
    const cellNames = ['price', 'chg', 'pct', 'vol', 'lo', 'hi'];
    const makeRow = (ticker) => {
        const el = new FakeNode('tr');
        const cells = {};
        for (const name of cellNames) cells[name] = el.appendChild(new FakeNode('span'));
        table.appendChild(el);
        return rowOf(ticker, el, cells);
    };
    watchlist.rows.set('AAPL', makeRow('AAPL'));
    watchlist.rows.set('MSFT', makeRow('MSFT'));
    const msg = (ticker) => ({
        type: 'price_update', ticker, price: 150.25, change: 2.5, change_percent: 1.69,
        volume: 75000000, high: 151, low: 148.5, timestamp: '2025-11-18T10:30:00.000Z',
    });
    watchlist.onPrice(msg('AAPL'), { replayed: false });
    watchlist.onPrice(msg('MSFT'), { replayed: false });
    env.raf.runFrame();
    assert.equal(env.client.getStats().cacheSize, 12);

    const removed = watchlist.rows.get('AAPL');
    assert.equal(watchlist.unsubscribe('AAPL'), true);
    assert.equal(removed.el.parent, null, 'the row left the table');
    assert.equal(env.client.getStats().cacheSize, 6, "the removed row's cells are no longer cached");
    for (const name of cellNames) {
        assert.equal(env.client.updateElementIfChanged(watchlist.rows.get('MSFT').cells[name], removed.cells[name].textContent), false, 'the other row is still cached');
    }
});

test('dashboard: a row shows the latest pattern of its ticker; an older one does not replace it', () => {
    const { watchlist } = makeWatchlist({ set: (key, fn) => fn(), delete() {} });
    const el = new FakeNode('tr');
    el.classList = { names: new Set(), add(name) { this.names.add(name); } };
    const chip = el.appendChild(new FakeNode('span'));
    chip.hidden = true;
    watchlist.rows.set('AAPL', rowOf('AAPL', el, { chip }));
    watchlist.showPattern('AAPL', { text: 'VCP 8.0', title: 'VCP · AAPL', time: 2000 });
    assert.equal(chip.textContent, 'VCP 8.0');
    assert.equal(chip.hidden, false);
    assert.ok(el.classList.names.has('has-pattern'));
    watchlist.showPattern('AAPL', { text: 'Cup 7.0', title: 'Cup · AAPL', time: 1000 }); // older (e.g. replayed late)
    assert.equal(chip.textContent, 'VCP 8.0');
    watchlist.showPattern('AAPL', { text: 'Flag 9.0', title: 'Flag · AAPL', time: 3000 });
    assert.equal(chip.textContent, 'Flag 9.0');
    assert.equal(chip.title, 'Flag · AAPL');
    // kept for rows added later, but bounded: the least recently marked tickers go first
    for (let i = 0; i < MAX_PATTERN_CHIPS + 50; i++) watchlist.showPattern('T' + i, { text: 'VCP', title: 'VCP', time: i });
    assert.equal(watchlist.patterns.size, MAX_PATTERN_CHIPS);
    assert.ok(!watchlist.patterns.has('AAPL') && watchlist.patterns.has('T' + (MAX_PATTERN_CHIPS + 49)));
});

// ───────────── exchange times, tokens, chart prices (pure helpers) ─────────────

test('dashboard: market times are exchange times with the zone named, wherever the browser is', () => {
    const { fmtMarketTime, exchangeZone } = loadDashboardClass();
    const ny = exchangeZone('XNYS');
    assert.equal(ny, 'America/New_York');
    assert.equal(exchangeZone('XLON'), 'Europe/London');
    assert.equal(exchangeZone('NOPE'), null);
    assert.equal(exchangeZone('toString'), null, 'only exchanges, not Object properties');
    const norm = (text) => text.replace(/\u202f/g, ' '); // ICU puts a narrow space before AM/PM
    // the next open, 9:30 New York time, seen on the same exchange day
    const open = new Date('2025-12-02T14:30:00Z');
    assert.equal(norm(fmtMarketTime(open, ny, new Date('2025-12-02T12:00:00Z'))), '9:30 AM ET');
    // from the evening before (already the next day in UTC and in Tokyo): the weekday is named
    assert.equal(norm(fmtMarketTime(open, ny, new Date('2025-12-02T01:00:00Z'))), 'Tue 9:30 AM ET');
    // in summer too (EDT), and far away with the date
    assert.equal(norm(fmtMarketTime(new Date('2025-07-03T17:00:00Z'), ny, new Date('2025-07-03T14:00:00Z'))), '1:00 PM ET');
    assert.equal(norm(fmtMarketTime(open, ny, new Date('2025-11-20T12:00:00Z'))), 'Dec 2, 9:30 AM ET');
    // another exchange shows its own zone's name
    assert.match(norm(fmtMarketTime(new Date('2025-12-02T08:00:00Z'), 'Europe/London', new Date('2025-12-02T07:00:00Z'))), /^8:00 AM (GMT|UTC)$/);
    assert.equal(fmtMarketTime(null, ny), '');
});

function jwtOf(claims, header = { alg: 'HS256', typ: 'JWT' }) {
    const part = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
    return part(header) + '.' + part(claims) + '.c2lnbmF0dXJl';
}

test('dashboard: a pasted token is read (not verified: the server does) to tell it from junk', () => {
    const { decodeToken, tokenFromHash, safeLink } = loadDashboardClass();
    const token = jwtOf({ sub: 'amélie', exp: 1764000000 });
    assert.deepEqual({ ...decodeToken(token) }, { sub: 'amélie', exp: 1764000000 });
    assert.deepEqual({ ...decodeToken('  ' + token + '\n') }, { sub: 'amélie', exp: 1764000000 });
    for (const junk of ['', null, 'hello', 'a.b', 'a.b.c.d', 'eyJ.e$J.x', jwtOf([1, 2]), 'bm90IGpzb24.bm90IGpzb24.x']) {
        assert.equal(decodeToken(junk), null, String(junk));
    }
    // a login service hands the token over in the fragment
    assert.equal(tokenFromHash('#token=' + token), token);
    assert.equal(tokenFromHash('#state=1&token=' + token), token);
    assert.equal(tokenFromHash('#token=not-a-token'), null);
    assert.equal(tokenFromHash(''), null);
    // an identity provider's implicit-flow answer; an opaque access token is passed over for the id token
    assert.equal(tokenFromHash('#access_token=' + token + '&token_type=Bearer&expires_in=3600'), token);
    assert.equal(tokenFromHash('#access_token=opaque123&id_token=' + token), token);
    assert.equal(tokenFromHash('#access_token=opaque123'), null);
    // the login link is a web address or a path here, never script
    assert.equal(safeLink('/login', 'http://localhost:8000/dashboard'), 'http://localhost:8000/login');
    assert.equal(safeLink('https://id.example/legend', 'http://localhost:8000/'), 'https://id.example/legend');
    assert.equal(safeLink('javascript:alert(1)', 'http://localhost:8000/'), null);
    assert.equal(safeLink('data:text/html,hi', 'http://localhost:8000/'), null);
    assert.equal(safeLink(null, 'http://localhost:8000/'), null);
});

test('dashboard: sign-in says why the server refused a token; a REST 401 shows the panel, except in development mode', () => {
    loadDashboardClass();
    const stopped = [];
    const painted = [];
    const signin = new SignIn({
        api: { get: unused('api.get') },
        dom: {},
        frame: { set: (key) => painted.push(key) },
        showError: unused('showError'),
        signedInAs: unused('signedInAs'),
        stop: () => stopped.push('stop'),
        reload: unused('reload'),
        destroyed: () => false,
    });
    const token = jwtOf({ sub: 'u1', exp: 1764000000 });
    assert.match(signin.refusal('authentication required: token expired', token), /^Your session expired at .+\. Sign in again to keep streaming\.$/);
    assert.equal(signin.refusal('authentication required: missing token', token), null);
    assert.equal(signin.refusal('authentication required: bad signature', token), 'The server refused your token (bad signature). Sign in again.');

    signin.mode = 'dev'; // a stored token means nothing to the server: not sent, and a 401 is not about it
    assert.equal(signin.token(), null);
    signin.onUnauthorized({ data: { detail: 'authentication required: bad signature' } });
    assert.equal(signin.signedOut, false);
    assert.deepEqual(stopped, []);

    signin.mode = 'jwt';
    signin.onUnauthorized({ data: { detail: 'authentication required: bad signature' } });
    assert.equal(signin.signedOut, true);
    assert.deepEqual(stopped, ['stop'], 'streaming stops');
    assert.deepEqual(painted, ['signin-message', 'signin'], 'the panel shows, with the reason');
});

test('dashboard: chart prices stay ascending, one per second, bounded', () => {
    const { recordPrice } = loadDashboardClass();
    const row = { times: [], prices: [] };
    const t0 = Date.UTC(2025, 0, 15, 14, 30);
    assert.equal(recordPrice(row, t0, 100), 'append');
    assert.equal(recordPrice(row, t0 + 300, 101), 'replace'); // same second
    assert.equal(recordPrice(row, t0 + 5000, 102), 'append');
    assert.equal(recordPrice(row, t0 + 2000, 99), 'insert'); // late (e.g. replayed): put in its place
    assert.equal(recordPrice(row, t0 + 2500, 98), null, 'that second is already known');
    assert.deepEqual(row.times, [t0 + 300, t0 + 2000, t0 + 5000]);
    assert.deepEqual(row.prices, [101, 99, 102]);
    for (let i = 0; i < 6000; i++) recordPrice(row, t0 + 10000 + i * 1000, i);
    assert.ok(row.times.length <= 5500 && row.times.length >= 5000, String(row.times.length));
    assert.equal(row.times.length, row.prices.length);
    assert.equal(row.prices[row.prices.length - 1], 5999);
    for (let i = 1; i < row.times.length; i++) assert.ok(row.times[i] > row.times[i - 1]);

    // a replay that loops starts its day again: the chart starts again too
    assert.equal(recordPrice(row, t0, 50), 'reset');
    assert.deepEqual([row.times, row.prices], [[t0], [50]]);
});

/** The page's ConnectionStatus on these elements, applying frame work at once, signed in. */
function indicator(d, dom) {
    return new ConnectionStatus({ dom, writer: d.writer, frame: { set: (key, fn) => fn() }, client: d.ws, signedOut: () => false });
}

test('dashboard: the connection indicator says when the server reports degraded live delivery', () => {
    const { d, env } = makeDashboard();
    const conn = new FakeNode('button');
    const label = conn.appendChild(new FakeNode('span'));
    const table = new FakeNode('table');
    table.classList = { on: new Set(), toggle(name, on) { if (on) this.on.add(name); else this.on.delete(name); } };
    d.status = indicator(d, { conn, connLabel: label, table });
    for (const name of ['_onOpen', '_onClose', '_onReconnecting', '_renderUser']) d[name] = () => {};
    d._bindClient(); // the page's own wiring: service_status must be among its handlers
    const flush = () => {
        env.clock.tick(500); // DOM writes are batched (batchUpdateDelay)
        env.raf.runFrame();
    };
    env.client.connect();
    const ws = env.WS.last;
    ws.open();
    flush();
    assert.equal(label.textContent, 'Live');
    assert.equal(conn.dataset.state, 'open');

    ws.serverSend({ type: 'service_status', status: 'degraded', component: 'backplane', reason: 'Backplane down', timestamp: 't' });
    flush();
    assert.equal(label.textContent, 'Live (degraded: updates may be delayed)');
    assert.equal(conn.dataset.state, 'degraded');
    assert.equal(conn.title, 'Backplane down');
    assert.ok(table.classList.on.has('is-stale'), 'prices are marked as possibly stale');

    ws.serverSend({ type: 'service_status', status: 'ok', component: 'backplane', reason: 'Back', timestamp: 't' });
    flush();
    assert.equal(label.textContent, 'Live');
    assert.equal(conn.dataset.state, 'open');
    assert.ok(!table.classList.on.has('is-stale'));
});

test('dashboard: after a draining server closes with 1001 and a hint, it waits the hint plus the jitter, says so, and resumes', () => {
    const { d, env } = makeDashboard();
    const conn = new FakeNode('button');
    const label = conn.appendChild(new FakeNode('span'));
    const table = new FakeNode('table');
    table.classList = { toggle() {} };
    d.status = indicator(d, { conn, connLabel: label, table });
    d.signin = { mode: 'dev' }; // what _onReconnecting asks: the server's auth mode is known
    d.watchlist = { onSubscription() {} };
    for (const name of ['_onOpen', '_onClose', '_renderUser']) d[name] = () => {};
    d._bindClient();
    env.client.subscribe('ticker', 'AAPL');
    env.client.connect();
    const ws = env.WS.last;
    ws.open();
    ws.serverSend({ type: 'subscription', action: 'subscribed', channel: 'ticker', ticker: 'AAPL', streams: ['ticker:AAPL'], timestamp: 't' });
    ws.serverSend({ type: 'history', channel: 'ticker:AAPL', ticker: 'AAPL', messages: [], seq: 0, timestamp: 't' });
    ws.serverSend({ type: 'price_update', ticker: 'AAPL', price: 1, channel: 'ticker:AAPL', seq: 12, timestamp: 't' });
    env.clock.tick(1000);

    ws.drop(1001, 'server shutting down; reconnect_after_ms=1000');
    // random 0.5: the hint (1000 ms) plus the first backoff (750 ms)
    assert.equal(conn.title, 'Reconnecting: attempt 1 in 1.8 s (click to retry now)');
    env.clock.tick(1749);
    assert.equal(env.WS.last, ws, 'no new socket before the hint and the jitter');
    env.clock.tick(1);
    const next = env.WS.last;
    assert.notEqual(next, ws);
    next.open();
    const subscribes = next.frames.filter((f) => f.type === 'subscribe');
    assert.deepEqual(subscribes, [{ type: 'subscribe', channel: 'ticker', ticker: 'AAPL', since: 12 }]);
});

test('dashboard: a simulated server shows the "Simulated prices" badge, and a ticker row shows its note', () => {
    const g = /** @type {any} */ (globalThis);
    if (g.navigator === undefined) g.navigator = { onLine: true }; // what the connection indicator reads (Node 20 has none)
    const { d, env } = makeDashboard();
    const simulated = new FakeNode('span');
    simulated.hidden = true;
    const table = new FakeNode('table');
    table.classList = { toggle() {} };
    d.status = indicator(d, { conn: new FakeNode('button'), connLabel: new FakeNode('span'), table, simulated });
    const { watchlist } = makeWatchlist({ set: (key, fn) => fn(), delete() {} });
    const note = new FakeNode('span');
    note.hidden = true;
    watchlist.rows.set('ZZZZZ9', rowOf('ZZZZZ9', new FakeNode('tr'), { note }));
    d.watchlist = watchlist;
    for (const name of ['_onOpen', '_onClose', '_onReconnecting', '_renderUser']) d[name] = () => {};
    d._bindClient(); // the page's own wiring: connection and subscription acks reach the badge and the rows
    env.client.subscribe('ticker', 'ZZZZZ9');
    env.client.connect();
    const ws = env.WS.last;
    ws.open();
    ws.serverSend({ type: 'connection', status: 'connected', connection_id: 'u_1', user_id: 'u', timestamp: 't', quote_provider: 'simulated', simulated_prices: true });
    assert.equal(simulated.hidden, false);
    assert.match(simulated.title, /moves at all hours, also while the market is closed/);
    const text = 'Made-up prices: ZZZZZ9 is not a ticker the simulation knows, so its level is invented';
    ws.serverSend({ type: 'subscription', action: 'subscribed', channel: 'ticker', ticker: 'ZZZZZ9', streams: ['ticker:ZZZZZ9'], note: text, timestamp: 't' });
    assert.equal(note.hidden, false);
    assert.equal(note.textContent, text);
    assert.equal(note.title, text);
    // a server with real prices: no badge, and a subscription without a note hides it
    ws.serverSend({ type: 'connection', status: 'connected', connection_id: 'u_2', user_id: 'u', timestamp: 't', quote_provider: 'finnhub' });
    assert.equal(simulated.hidden, true);
    ws.serverSend({ type: 'subscription', action: 'subscribed', channel: 'ticker', ticker: 'ZZZZZ9', streams: ['ticker:ZZZZZ9'], timestamp: 't' });
    assert.equal(note.hidden, true);
    assert.deepEqual(env.logger.records.filter((r) => r.level === 'error' || r.level === 'warn').map((r) => String(r.args[0]) + ' ' + String(r.args[1])), []);
    assert.deepEqual(env.logger.records.filter((r) => r.level === 'error').map((r) => String(r.args[0]) + ' ' + String(r.args[1])), [], 'no handler failed');
});

test('dashboard: a gap of pattern alerts shows the notice, reloads the list, and a later complete ok clears it', () => {
    const { d, env } = makeDashboard();
    const conn = new FakeNode('button');
    const label = conn.appendChild(new FakeNode('span'));
    const table = new FakeNode('table');
    table.classList = { toggle() {} };
    d.status = indicator(d, { conn, connLabel: label, table });
    for (const name of ['_onOpen', '_onClose', '_onReconnecting', '_renderUser']) d[name] = () => {};
    d.watchlist = { onSubscription() {} };
    d._bindClient(); // the page's own wiring: gap and service_status reach the notice
    env.client.subscribe('patterns');
    env.client.connect();
    const ws = env.WS.last;
    ws.open();
    ws.serverSend({ type: 'subscription', action: 'subscribed', channel: 'patterns', streams: ['patterns'], timestamp: 't' });
    ws.serverSend({ type: 'history', channel: 'patterns', messages: [], seq: 3, timestamp: 't' });
    const sent = ws.frames.length;

    ws.serverSend({ type: 'service_status', status: 'degraded', component: 'backplane', reason: 'down', timestamp: 't' });
    ws.serverSend({ type: 'gap', channel: 'patterns', from_seq: 4, to_seq: 18, timestamp: 't' });
    ws.serverSend({ type: 'service_status', status: 'ok', component: 'backplane', reason: 'back', timestamp: 't', complete: false, gaps: ['patterns'] });
    assert.equal(d.gapDom.gapNotice.hidden, false);
    assert.equal(d.gapDom.gapText.textContent,
        'Some pattern alerts may be missing after a connection problem (patterns 4–18); the list was reloaded.');
    assert.deepEqual(ws.frames.slice(sent), [{ type: 'subscribe', channel: 'patterns' }], 'its history is asked for again');
    assert.deepEqual(env.logger.records.filter((r) => r.level === 'error').map((r) => String(r.args[0]) + ' ' + String(r.args[1])), [], 'no handler failed');

    ws.serverSend({ type: 'service_status', status: 'degraded', component: 'backplane', reason: 'down', timestamp: 't' });
    ws.serverSend({ type: 'service_status', status: 'ok', component: 'backplane', reason: 'back', timestamp: 't', complete: true });
    assert.equal(d.gapDom.gapNotice.hidden, true);
});
