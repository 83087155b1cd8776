// @ts-check
// Tests of where alerts go, in Node (web/static/js/dashboard/notifications.js, voice.js, alerts.js): the
// server's push key as bytes, deliveries and channels in words; the Notifications panel over the real
// REST client with a stubbed fetch and stand-ins for the service worker container, Notification and
// pushManager: permission asked only when push is turned on, the subscription made with the server's key
// and POSTed, DELETEd when turned off, a refusal said; a webhook's 400 next to its field; a test's outcome;
// voice over a stubbed speechSynthesis; the Activity list told where each trigger went. In Chromium:
// tests/browser/test_notifications.py.
// Run with: node --test tests/js/

import assert from 'node:assert/strict';
import test from 'node:test';

import { AlertFeed, DELIVERY_REREAD_MS } from '../../web/static/js/dashboard/alerts.js';
import {
    NotificationsPanel, WORKER_SCOPE, WORKER_URL, deliveryText, keyBytes, notifyText,
} from '../../web/static/js/dashboard/notifications.js';
import { Api } from '../../web/static/js/dashboard/rest.js';
import { VoiceAlerts } from '../../web/static/js/dashboard/voice.js';

const g = /** @type {any} */ (globalThis);

class Node {
    constructor(tag) {
        this.tag = tag;
        this.children = [];
        this.dataset = {};
        this.attributes = {};
        this.hidden = false;
        this.disabled = false;
        this.value = '';
        this.title = '';
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

    removeAttribute(name) {
        delete this.attributes[name];
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

    querySelector() {
        return this.children[0] || null;
    }
}

g.document = { createElement: (tag) => new Node(tag) };
const store = new Map();
g.window = { localStorage: { getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => store.set(k, String(v)), removeItem: (k) => store.delete(k) } };

// A P-256 public key (65 bytes, 0x04 first), base64url as GET /api/notifications/push/key gives it.
const KEY = Buffer.from([4, ...Array.from({ length: 64 }, (_, i) => i)]).toString('base64url');

/** `fetch` answering from `answers` in turn ([status, body]); the requests it saw. */
function stubFetch(answers) {
    const requests = [];
    g.fetch = async (url, init) => {
        requests.push({ url, method: init.method, body: init.body === undefined ? undefined : JSON.parse(init.body) });
        const [status, body] = answers.shift() || [500, { detail: 'no answer planned' }];
        return { ok: status >= 200 && status < 300, status, text: async () => (body === undefined ? '' : JSON.stringify(body)) };
    };
    return requests;
}

/** The browser's push parts: a container whose registration has a stand-in pushManager. */
function fakePush(permission = 'default', answer = 'granted') {
    const seen = { registered: [], asked: 0, subscribed: [], unsubscribed: 0 };
    let current = null;
    const pushManager = {
        getSubscription: async () => current,
        subscribe: async (options) => {
            seen.subscribed.push(options);
            current = {
                endpoint: 'https://push.example.net/send/abc',
                options,
                toJSON: () => ({ endpoint: 'https://push.example.net/send/abc', expirationTime: null, keys: { p256dh: 'p', auth: 'a' } }),
                unsubscribe: async () => {
                    seen.unsubscribed++;
                    current = null;
                    return true;
                },
            };
            return current;
        },
    };
    const Notification = {
        permission,
        requestPermission: async () => {
            seen.asked++;
            Notification.permission = answer;
            return answer;
        },
    };
    const container = {
        register: async (url, options) => {
            seen.registered.push([url, options.scope]);
            return { active: { state: 'activated' }, pushManager };
        },
    };
    return { push: { container, Notification }, seen };
}

function panelDom() {
    const dom = {};
    for (const name of ['notifyNote', 'notifyError', 'pushStatus', 'webhookForm', 'webhookUrl', 'webhookUrlError', 'webhookSecret',
        'webhookSecretError', 'emailForm', 'emailAddress', 'emailAddressError', 'destinations']) dom[name] = new Node('x');
    dom.pushToggle = new Node('button');
    dom.pushToggle.appendChild(new Node('span'));
    return dom;
}

function makePanel(answers, push) {
    const requests = stubFetch(answers);
    const dom = panelDom();
    const panel = new NotificationsPanel({
        api: new Api('trader-1', () => null, undefined),
        dom,
        frame: { set: (_key, fn) => fn() },
        push,
        destroyed: () => false,
    });
    return { panel, dom, requests };
}

const LISTED = { webhooks: [], push: [], email: [], channels: ['push', 'webhook'] };

test('the push key as bytes; deliveries and channels in words', () => {
    const bytes = keyBytes(KEY);
    assert.equal(bytes.length, 65);
    assert.equal(bytes[0], 4);
    assert.throws(() => keyBytes('AAAA'), /not a P-256 public key/);
    assert.throws(() => keyBytes('***'), /not base64url/);
    assert.deepEqual(deliveryText({ channel: 'webhook', state: 'retrying', attempts: 2, next_attempt_at: '2030-01-01T00:00:00Z', error: 'HTTP 503' }).text, 'Webhook: retrying');
    assert.match(deliveryText({ channel: 'webhook', state: 'retrying', attempts: 2, error: 'HTTP 503' }).detail, /2 attempts; last error: HTTP 503/);
    assert.equal(deliveryText({ channel: 'push', state: 'delivered', attempts: 1 }).state, 'delivered');
    assert.equal(deliveryText({ channel: 'email', state: 'nonsense' }).state, 'pending');
    assert.equal(notifyText(null), null);
    assert.equal(notifyText([]), 'Only in the page');
    assert.equal(notifyText(['push', 'email']), 'Sends to push, e-mail');
});

test('push: the worker registers at start without asking; on asks, subscribes with the server\'s key and posts it; off deletes it', async () => {
    const { push, seen } = fakePush();
    const { panel, dom, requests } = makePanel([
        [200, LISTED],
        [200, { public_key: KEY }],
        [201, { id: 5, channel: 'push', endpoint: 'https://push.example.net/send/abc', created_at: 'x' }],
        [204, undefined],
    ], push);
    await panel.register();
    await panel.load();
    assert.deepEqual(seen.registered, [[WORKER_URL, WORKER_SCOPE]]);
    assert.equal(seen.asked, 0, 'no permission asked before the trader turns push on');
    assert.equal(dom.pushToggle.disabled, false);
    assert.equal(dom.pushToggle.attributes['aria-pressed'], 'false');

    assert.deepEqual(await panel.setPush(true), { ok: true });
    assert.equal(seen.asked, 1);
    assert.equal(seen.subscribed.length, 1);
    assert.equal(seen.subscribed[0].userVisibleOnly, true);
    assert.deepEqual(Array.from(seen.subscribed[0].applicationServerKey), Array.from(keyBytes(KEY)));
    assert.deepEqual(requests.slice(1).map((r) => [r.method, r.url]), [['GET', '/api/notifications/push/key'], ['POST', '/api/notifications/push']]);
    assert.deepEqual(requests[2].body, { endpoint: 'https://push.example.net/send/abc', expirationTime: null, keys: { p256dh: 'p', auth: 'a' } });
    assert.equal(panel.pushOn, true);
    assert.equal(dom.pushToggle.attributes['aria-pressed'], 'true');
    assert.match(dom.destinations.children[0].textContent, /this browser/);

    assert.deepEqual(await panel.setPush(false), { ok: true });
    assert.equal(seen.unsubscribed, 1);
    assert.deepEqual([requests[3].method, requests[3].url], ['DELETE', '/api/notifications/push/5']);
    assert.equal(panel.pushOn, false);
    assert.equal(dom.destinations.children.length, 0);
});

test('push: a refused permission subscribes nothing and says how to allow it; a browser without push says so', async () => {
    const { push, seen } = fakePush('default', 'denied');
    const { panel, dom, requests } = makePanel([[200, LISTED]], push);
    await panel.register();
    await panel.load();
    const result = await panel.setPush(true);
    assert.equal(result.ok, false);
    assert.match(dom.pushStatus.textContent, /blocked for this site/);
    assert.equal(seen.subscribed.length, 0);
    assert.equal(requests.length, 1, 'the key is not even asked for');

    const bare = makePanel([[200, LISTED]], { container: null, Notification: null });
    await bare.panel.load();
    assert.equal(bare.dom.pushToggle.disabled, true);
    assert.match((await bare.panel.setPush(true)).error, /cannot receive push/);
});

test('push: the server refusing the subscription is said, and push stays off', async () => {
    const { push } = fakePush('granted');
    const { panel, dom } = makePanel([
        [200, LISTED],
        [200, { public_key: KEY }],
        [400, { detail: 'Validation failed', extra: [{ key: 'endpoint', message: 'refused: a private address' }] }],
    ], push);
    await panel.register();
    await panel.load();
    const result = await panel.setPush(true);
    assert.equal(result.ok, false);
    assert.match(dom.pushStatus.textContent, /refused this browser's subscription: refused: a private address/);
    assert.equal(panel.pushOn, false);
});

test('webhooks: what is missing is said before asking; the server\'s 400 goes next to its field; added, tested, removed', async () => {
    const { panel, dom, requests } = makePanel([
        [200, LISTED],
        [400, { detail: 'Validation failed', extra: [{ key: 'secret', message: 'Expected `str` of length >= 16', source: 'body' }] }],
        [201, { id: 3, channel: 'webhook', url: 'https://hooks.example.com/a', created_at: 'x' }],
        [200, { outcome: 'retry', error: 'HTTP 503', status: 503 }],
        [200, { outcome: 'delivered', error: null, status: 200 }],
        [204, undefined],
    ], null);
    await panel.load();
    assert.equal(dom.webhookForm.hidden, false);
    assert.equal(dom.emailForm.hidden, true, 'no e-mail channel on this server');

    const missing = await panel.addWebhook('', '');
    assert.deepEqual(Object.keys(missing.fields), ['url', 'secret']);
    assert.equal(requests.length, 1, 'nothing sent');

    const refused = await panel.addWebhook('https://hooks.example.com/a', 'short');
    assert.equal(refused.ok, false);
    assert.equal(dom.webhookSecretError.textContent, 'Expected `str` of length >= 16');
    assert.equal(dom.webhookSecretError.hidden, false);
    assert.equal(dom.webhookSecret.attributes['aria-invalid'], 'true');
    assert.equal(dom.webhookUrlError.hidden, true);

    dom.webhookUrl.value = 'https://hooks.example.com/a';
    assert.equal((await panel.addWebhook('https://hooks.example.com/a', 's'.repeat(20))).ok, true);
    assert.equal(dom.webhookUrl.value, '', 'the form is emptied');
    assert.equal(dom.webhookSecretError.hidden, true);
    assert.equal(dom.destinations.children.length, 1);

    const retry = await panel.test('webhook', 3);
    assert.equal(retry.text, 'Not delivered (an alert would be retried) (HTTP 503): HTTP 503');
    assert.equal((await panel.test('webhook', 3)).text, 'Delivered (HTTP 200)');
    assert.deepEqual([requests[4].method, requests[4].url], ['POST', '/api/notifications/webhooks/3/test']);

    assert.deepEqual(await panel.remove('webhook', '3'), { ok: true });
    assert.deepEqual([requests[5].method, requests[5].url], ['DELETE', '/api/notifications/webhooks/3']);
    assert.equal(dom.destinations.children.length, 0);
});

test('a server without alert delivery: the panel says so and offers nothing', async () => {
    const { panel, dom } = makePanel([[503, { detail: 'alert delivery needs a database and [notifications] enabled = true' }]], null);
    await panel.load();
    assert.equal(panel.available, false);
    assert.match(dom.notifyNote.textContent, /needs a database/);
    assert.equal(dom.webhookForm.hidden, true);
    assert.equal(dom.pushToggle.disabled, true);
});

function makeVoice() {
    const said = [];
    const speech = {
        speak: (u) => said.push(u),
        cancel: () => said.push('cancel'),
    };
    const button = new Node('button');
    button.appendChild(new Node('span'));
    const voice = new VoiceAlerts({
        speech,
        utterance: (text) => ({ text }),
        button,
        writer: /** @type {any} */ ({ write: (node, text) => (node.textContent = text) }),
        frame: { set: (_key, fn) => fn() },
    });
    return { voice, said, button };
}

test('voice: off says nothing; on reads each trigger\'s message, a burst at most MAX_QUEUED at once; remembered', () => {
    store.clear();
    const { voice, said, button } = makeVoice();
    assert.equal(voice.enabled, false);
    assert.equal(voice.alert({ ticker: 'AAPL', message: 'AAPL above $150' }), false);
    assert.equal(said.length, 0);

    voice.setEnabled(true);
    assert.equal(button.attributes['aria-pressed'], 'true');
    assert.equal(store.get('legend.voice'), 'on');
    said[0].onend(); // "Voice alerts on" was said
    assert.equal(voice.alert({ ticker: 'AAPL', message: 'AAPL above $150' }), true);
    assert.equal(voice.alert({ ticker: 'MSFT', alert_type: 'price_below' }), true);
    assert.equal(voice.pattern({ ticker: 'NVDA', pattern_type: 'VCP', score: 8.46 }), true);
    assert.equal(voice.alert({ ticker: 'TSLA', message: 'a fourth while three wait' }), false);
    assert.deepEqual(said.map((u) => u.text), ['Voice alerts on', 'AAPL above $150', 'MSFT: price below', 'VCP on NVDA, score 8.5']);
    said[1].onend();
    assert.equal(voice.alert({ ticker: 'TSLA', message: 'x'.repeat(500) }), true);
    assert.equal(said[4].text.length, 200, 'a long message is cut');

    assert.equal(makeVoice().voice.enabled, true, 'remembered in this browser');
    voice.setEnabled(false);
    assert.equal(said.at(-1), 'cancel');
    assert.equal(store.has('legend.voice'), false);

    const mute = new VoiceAlerts({ speech: null, button: null, writer: /** @type {any} */ ({}), frame: { set() {} } });
    assert.equal(mute.setEnabled(true), false, 'a browser without speech synthesis');
});

test('alert feed: a trigger is read out, and where it went is read again while a delivery is under way', async () => {
    const events = (state) => [200, { events: [{ alert_id: 'r1-1', ticker: 'AAPL', alert_type: 'price_above', message: 'm', triggered_at: '2030-01-01T00:00:00Z', deliveries: [{ channel: 'webhook', destination_id: 1, state, attempts: 1 }] }] }];
    stubFetch([events('retrying'), events('retrying'), events('delivered')]);
    const calls = { spoken: [], deliveries: [], timers: [] };
    const feed = new AlertFeed({
        api: new Api('trader-1', () => null, undefined),
        activity: {
            has: () => false,
            add: () => true,
            setDeliveries: (key, list) => calls.deliveries.push([key, list.map((d) => d.state)]) > 0,
        },
        toasts: { show() {} },
        sound: { alert() {} },
        voice: { alert: (msg) => calls.spoken.push(msg.message) > 0, pattern: () => false },
        watchlist: { showPattern() {}, highlight() {} },
        rules: { available: false, load: async () => {} },
        later: (fn, ms) => calls.timers.push([fn, ms]),
        destroyed: () => false,
    });
    assert.equal(await feed.loadEvents(), true, 'a delivery is under way');
    assert.deepEqual(calls.deliveries, [['alert|r1-1', ['retrying']]]);

    feed.onAlertTrigger({ alert_id: 'r1-2', ticker: 'AAPL', alert_type: 'price_above', message: 'AAPL above $150' });
    assert.deepEqual(calls.spoken, ['AAPL above $150']);
    assert.deepEqual(calls.timers.map(([, ms]) => ms), [DELIVERY_REREAD_MS[0]]);
    feed.onAlertTrigger({ alert_id: 'r1-3', ticker: 'AAPL', alert_type: 'price_above', message: 'again' });
    assert.equal(calls.timers.length, 1, 'one re-read pending at a time');
    await calls.timers[0][0]();
    assert.deepEqual(calls.timers.map(([, ms]) => ms), [DELIVERY_REREAD_MS[0], DELIVERY_REREAD_MS[1]], 'still retrying: read again later');
    await calls.timers[1][0]();
    assert.equal(calls.timers.length, 2, 'delivered: no more re-reads');
    assert.deepEqual(calls.deliveries.at(-1), ['alert|r1-1', ['delivered']]);
});
