// @ts-check
/**
 * Legend Realtime dashboard — where alerts go besides this page (/api/notifications, docs/alerts.md
 * "Where alerts go"): the Notifications panel turns Web Push on and off for this browser (permission asked
 * only then; the service worker /static/sw.js shows the pushed triggers), adds and removes webhooks and an
 * e-mail address (the server's 400 next to its field), and tests each destination. Also the words for a
 * trigger's deliveries (the Activity list shows them). An object of its own (the dashboard's
 * `notifications`): it gets the REST client, its elements, the frame batch, the browser's push parts
 * (navigator.serviceWorker, Notification; stand-ins in tests) and whether the page is gone.
 */
import { el } from './dom.js';
import { errorText } from './rest.js';

/** @typedef {import('./rest.js').Api} Api */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */
/**
 * @typedef {object} PushParts the browser's push parts (null members: this browser has no push)
 * @property {any} container navigator.serviceWorker
 * @property {any} Notification the Notification class (permission, requestPermission)
 */

export const WORKER_URL = '/static/sw.js';
export const WORKER_SCOPE = '/static/';
/** The API's channel name -> its path under /api/notifications, and how the page names it. */
export const CHANNELS = {
    push: { path: 'push', label: 'Push' },
    webhook: { path: 'webhooks', label: 'Webhook' },
    email: { path: 'email', label: 'E-mail' },
};
/** A delivery's state in words, and how it ranks (the worst names a trigger's deliveries). */
export const DELIVERY_STATES = {
    delivered: { text: 'delivered', rank: 0 },
    removed: { text: 'destination removed', rank: 1 },
    pending: { text: 'sending', rank: 2 },
    retrying: { text: 'retrying', rank: 3 },
    failed: { text: 'failed', rank: 4 },
};
const TEST_OUTCOMES = {
    delivered: 'Delivered',
    retry: 'Not delivered (an alert would be retried)',
    failed: 'Failed',
    removed: 'Gone: the push service dropped this subscription, it was removed',
};

/**
 * The bytes of a base64url key (the server's VAPID public key: a 65-byte P-256 point).
 * @param {unknown} text
 */
export function keyBytes(text) {
    const b64 = String(text || '').replace(/-/g, '+').replace(/_/g, '/');
    let binary;
    try {
        binary = atob(b64 + '==='.slice((b64.length + 3) % 4));
    } catch (err) {
        throw new Error('the server\'s push key is not base64url', { cause: err });
    }
    if (binary.length !== 65 || binary.charCodeAt(0) !== 4) throw new Error('the server\'s push key is not a P-256 public key');
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** Whether two keys (ArrayBuffer or typed array) hold the same bytes. */
function sameBytes(a, b) {
    if (!a || !b) return false;
    const x = new Uint8Array(a.buffer || a);
    const y = new Uint8Array(b.buffer || b);
    return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * One delivery in words: "Webhook: retrying" with its detail (last error, next attempt) for a title.
 * @param {any} d a delivery of GET /api/alerts/events
 * @returns {{state: string, text: string, detail: string}}
 */
export function deliveryText(d) {
    const channel = CHANNELS[d && d.channel] ? CHANNELS[d.channel].label : String((d && d.channel) || 'Delivery');
    const state = d && DELIVERY_STATES[d.state] ? d.state : 'pending';
    const parts = [];
    if (d && d.attempts) parts.push(d.attempts + (d.attempts === 1 ? ' attempt' : ' attempts'));
    if (state === 'delivered' && d.delivered_at) parts.push('at ' + new Date(d.delivered_at).toLocaleString());
    if (state === 'retrying' && d.next_attempt_at) parts.push('next at ' + new Date(d.next_attempt_at).toLocaleString());
    if (d && d.error) parts.push('last error: ' + d.error);
    return { state, text: channel + ': ' + DELIVERY_STATES[state].text, detail: parts.join('; ') };
}

/**
 * The tags of a trigger's deliveries (an empty list: none were planned: the trigger stayed in the page).
 * @param {any[]} deliveries
 */
export function deliveryTags(deliveries) {
    const list = el('ul', 'feed-deliveries');
    list.setAttribute('aria-label', 'Where this alert went');
    for (const d of deliveries) {
        const { state, text, detail } = deliveryText(d);
        const tag = el('li', 'tag tag-delivery', text);
        tag.dataset.state = state;
        if (detail) tag.title = detail;
        list.appendChild(tag);
    }
    return list;
}

/** A rule's channels in words ("Sends to push, e-mail"; "Only in the page"); null when it uses them all. */
export function notifyText(notify) {
    if (!Array.isArray(notify)) return null;
    if (!notify.length) return 'Only in the page';
    return 'Sends to ' + notify.map((c) => (CHANNELS[c] ? CHANNELS[c].label.toLowerCase() : String(c))).join(', ');
}

/**
 * The server's 400 by field (`names`), the rest as sentences.
 * @param {any} res
 * @param {string[]} names
 */
export function fieldErrors(res, names) {
    /** @type {Record<string, string>} */
    const fields = {};
    const other = [];
    const extra = res && res.data && Array.isArray(res.data.extra) ? res.data.extra : [];
    for (const item of extra) {
        if (!item || !item.message) continue;
        const key = typeof item.key === 'string' ? item.key.replace(/^\$\./, '') : '';
        if (names.includes(key)) fields[key] = fields[key] ? fields[key] + '; ' + item.message : String(item.message);
        else other.push(key ? key + ': ' + item.message : String(item.message));
    }
    if (!extra.length) other.push(errorText(res, 'The server refused it'));
    return { fields, other };
}

/** The registration's active worker, waiting for it when the registration is new. */
function activated(registration) {
    if (registration.active) return Promise.resolve(registration);
    const worker = registration.installing || registration.waiting;
    if (!worker) return Promise.resolve(registration);
    return new Promise((resolve, reject) => {
        const check = () => {
            if (worker.state === 'activated') resolve(registration);
            else if (worker.state === 'redundant') reject(new Error('the service worker could not be installed'));
        };
        worker.addEventListener('statechange', check);
        check();
    });
}

export class NotificationsPanel {
    /**
     * @param {object} parts
     * @param {Pick<Api, 'get' | 'post' | 'del'>} parts.api the REST client
     * @param {Record<string, any>} parts.dom notifyNote, notifyError, pushToggle, pushStatus, webhookForm,
     *     webhookUrl, webhookUrlError, webhookSecret, webhookSecretError, emailForm, emailAddress,
 *     emailAddressError, destinations (the list)
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies DOM changes once per frame
     * @param {PushParts} parts.push the browser's push parts
     * @param {() => boolean} parts.destroyed whether the page was destroyed
     */
    constructor({ api, dom, frame, push, destroyed }) {
        this._api = api;
        this._dom = dom;
        this._frame = frame;
        this._push = push;
        this._destroyed = destroyed;
        /** @type {boolean | null} whether the server delivers alerts; null: not known yet */
        this.available = null;
        /** @type {{webhooks: any[], push: any[], email: any[]}} the user's destinations */
        this.destinations = { webhooks: [], push: [], email: [] };
        /** @type {string[]} the channels the server can send on */
        this.channels = [];
        /** @type {any} this browser's push subscription */
        this.subscription = null;
        /** @type {any} the service worker's registration */
        this.registration = null;
        /** @type {Map<string, string>} 'channel:id' -> the latest test's outcome in words */
        this.results = new Map();
        this.busy = false;
    }

    /** Whether this browser can receive Web Push. */
    get pushSupported() {
        const p = this._push;
        return !!(p && p.container && p.Notification && typeof p.container.register === 'function');
    }

    /** Whether push is on for this browser: it has a subscription the server lists. */
    get pushOn() {
        const sub = this.subscription;
        return !!sub && this.destinations.push.some((d) => d.endpoint === sub.endpoint);
    }

    /** Register the service worker (kept up to date; it asks for nothing) and read this browser's subscription. */
    async register() {
        if (!this.pushSupported) return null;
        try {
            this.registration = await activated(await this._push.container.register(WORKER_URL, { scope: WORKER_SCOPE }));
            this.subscription = await this.registration.pushManager.getSubscription();
        } catch (err) {
            this.registration = null;
            this._status('Push cannot be used here: ' + (err && err.message ? err.message : String(err)));
        }
        this.render();
        return this.registration;
    }

    /** Read the user's destinations (GET /api/notifications). */
    async load() {
        const res = await this._api.get('/api/notifications');
        if (this._destroyed()) return;
        if (res.status === 404 || res.status === 503) {
            this.available = false;
            this._note(res.status === 404 ? 'Alert delivery is not available on this server.' : errorText(res, 'Alert delivery is off on this server'));
        } else if (!res.ok) {
            this._note(errorText(res, 'Could not load where your alerts go'));
        } else {
            const data = res.data || {};
            this.available = true;
            this._note(null);
            for (const key of ['webhooks', 'push', 'email']) this.destinations[key] = Array.isArray(data[key]) ? data[key] : [];
            this.channels = Array.isArray(data.channels) ? data.channels : [];
        }
        this.render();
    }

    /**
     * Turn push on (asks for permission, subscribes with the server's key, registers the subscription)
     * or off (unsubscribes, removes it from the server). Resolves to {ok, error}.
     * @param {unknown} on
     */
    async setPush(on) {
        if (this.busy) return { ok: false, error: 'busy' };
        this.busy = true;
        this.render();
        try {
            return on ? await this._pushOn() : await this._pushOff();
        } catch (err) {
            return this._pushFailed('Push could not be turned ' + (on ? 'on' : 'off') + ': ' + (err && err.message ? err.message : String(err)));
        } finally {
            this.busy = false;
            this.render();
        }
    }

    async _pushOn() {
        if (!this.pushSupported) return this._pushFailed('This browser cannot receive push notifications.');
        const N = this._push.Notification;
        const permission = N.permission === 'granted' ? 'granted' : await N.requestPermission();
        if (permission !== 'granted') {
            return this._pushFailed(permission === 'denied'
                ? 'Notifications are blocked for this site: allow them in the browser\'s site settings, then try again.'
                : 'Push stays off: notifications were not allowed.');
        }
        const key = await this._api.get('/api/notifications/push/key');
        if (!key.ok) return this._pushFailed(errorText(key, 'The server has no push key'));
        const bytes = keyBytes(key.data && key.data.public_key);
        const registration = this.registration || (await this.register());
        if (!registration) return this._pushFailed('The service worker could not be registered.');
        let sub = await registration.pushManager.getSubscription();
        if (sub && !sameBytes(sub.options && sub.options.applicationServerKey, bytes)) {
            await sub.unsubscribe(); // made with another server key: useless now
            sub = null;
        }
        if (!sub) sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes });
        const res = await this._api.post('/api/notifications/push', sub.toJSON());
        if (this._destroyed()) return { ok: false };
        if (!res.ok) {
            const { fields, other } = fieldErrors(res, ['endpoint', 'keys']);
            return this._pushFailed('The server refused this browser\'s subscription: ' + Object.values(fields).concat(other).join('; '));
        }
        this.subscription = sub;
        this._store('push', res.data);
        this._status('Push is on: alerts reach this browser, also with the page closed.');
        return { ok: true };
    }

    async _pushOff() {
        const registration = this.registration;
        const sub = this.subscription || (registration ? await registration.pushManager.getSubscription() : null);
        if (sub) await sub.unsubscribe().catch(() => false);
        for (const d of this.destinations.push.filter((p) => sub && p.endpoint === sub.endpoint)) {
            const res = await this._api.del('/api/notifications/push/' + encodeURIComponent(d.id));
            if (res.ok || res.status === 404) this._drop('push', d.id);
        }
        this.subscription = null; // push shows off once the server no longer sends here
        this._status('Push is off for this browser.');
        return { ok: true };
    }

    _pushFailed(text) {
        this._status(text);
        return { ok: false, error: text };
    }

    /**
     * Add a webhook (what its form does): the server's 400 goes next to the URL or the secret.
     * @param {unknown} url
     * @param {unknown} secret at least 16 characters (the server says so)
     */
    async addWebhook(url, secret) {
        const body = { url: String(url || '').trim(), secret: String(secret || '') };
        /** @type {Record<string, string>} */
        const missing = {};
        if (!body.url) missing.url = 'Enter the URL that receives your alerts';
        if (!body.secret) missing.secret = 'Enter a secret (16 characters or more) to sign them with';
        return this._add('webhook', body, missing, {
            url: { input: this._dom.webhookUrl, box: this._dom.webhookUrlError },
            secret: { input: this._dom.webhookSecret, box: this._dom.webhookSecretError },
        });
    }

    /**
     * Add an e-mail address (what its form does).
     * @param {unknown} address
     */
    async addEmail(address) {
        const body = { address: String(address || '').trim() };
        const missing = body.address ? {} : { address: 'Enter an e-mail address' };
        return this._add('email', body, missing, { address: { input: this._dom.emailAddress, box: this._dom.emailAddressError } });
    }

    /** POST a destination; errors next to `inputs` (by field), the rest under the panel. */
    async _add(channel, body, missing, inputs) {
        this._fieldErrors(inputs, missing);
        this._error(null);
        if (Object.keys(missing).length) return { ok: false, error: Object.values(missing).join('; '), fields: missing };
        const res = await this._api.post('/api/notifications/' + CHANNELS[channel].path, body);
        if (this._destroyed()) return { ok: false };
        if (!res.ok) {
            const { fields, other } = fieldErrors(res, Object.keys(inputs));
            this._fieldErrors(inputs, fields);
            if (other.length) this._error(other.join('; '));
            return { ok: false, error: Object.values(fields).concat(other).join('; '), fields };
        }
        for (const { input } of Object.values(inputs)) if (input) input.value = '';
        this._store(channel, res.data);
        return { ok: true, destination: res.data };
    }

    /**
     * Remove a destination (push: this browser's subscription ends too).
     * @param {string} channel push | webhook | email
     * @param {unknown} id
     */
    async remove(channel, id) {
        if (!CHANNELS[channel]) return { ok: false };
        const key = CHANNELS[channel].path;
        const found = this.destinations[key].find((d) => String(d.id) === String(id));
        if (channel === 'push' && found && this.subscription && found.endpoint === this.subscription.endpoint) return this.setPush(false);
        const res = await this._api.del('/api/notifications/' + key + '/' + encodeURIComponent(String(id)));
        if (this._destroyed()) return { ok: false };
        if (!res.ok && res.status !== 404) {
            const text = errorText(res, 'Could not remove it');
            this._error(text);
            return { ok: false, error: text };
        }
        this._drop(channel, id);
        return { ok: true };
    }

    /**
     * Send a test message to a destination now; its outcome is shown next to it. Resolves to the answer.
     * @param {string} channel
     * @param {unknown} id
     */
    async test(channel, id) {
        if (!CHANNELS[channel]) return { ok: false };
        const tag = channel + ':' + id;
        this.results.set(tag, 'Sending a test…');
        this.render();
        const res = await this._api.post('/api/notifications/' + CHANNELS[channel].path + '/' + encodeURIComponent(String(id)) + '/test');
        if (this._destroyed()) return { ok: false };
        let text;
        if (!res.ok) text = errorText(res, 'The test could not be sent');
        else {
            const d = res.data || {};
            text = (TEST_OUTCOMES[d.outcome] || String(d.outcome)) + (d.status ? ' (HTTP ' + d.status + ')' : '') + (d.error && d.outcome !== 'delivered' ? ': ' + d.error : '');
        }
        this.results.set(tag, text);
        if (res.ok && res.data && res.data.outcome === 'removed') this._drop(channel, id);
        this.render();
        return { ok: res.ok && res.data && res.data.outcome === 'delivered', outcome: res.data && res.data.outcome, text };
    }

    _store(channel, destination) {
        if (!destination || destination.id === undefined) return;
        const key = CHANNELS[channel].path;
        this.destinations[key] = this.destinations[key].filter((d) => d.id !== destination.id).concat([destination]);
        this.render();
    }

    _drop(channel, id) {
        const key = CHANNELS[channel].path;
        this.destinations[key] = this.destinations[key].filter((d) => String(d.id) !== String(id));
        this.results.delete(channel + ':' + id);
        this.render();
    }

    /** Each field's error next to its input (`inputs`: name -> {input, box}); none given: cleared. */
    _fieldErrors(inputs, errors) {
        for (const [name, { input, box }] of Object.entries(inputs)) {
            const message = errors[name] || null;
            if (box) {
                box.hidden = !message;
                box.textContent = message || '';
            }
            if (!input) continue;
            if (message) input.setAttribute('aria-invalid', 'true');
            else input.removeAttribute('aria-invalid');
        }
    }

    _note(text) {
        this._text(this._dom.notifyNote, text);
    }

    _error(text) {
        this._text(this._dom.notifyError, text);
    }

    _status(text) {
        this._text(this._dom.pushStatus, text);
    }

    _text(node, text) {
        if (!node) return;
        this._frame.set(node, () => {
            node.hidden = !text;
            node.textContent = text || '';
        });
    }

    /** The push switch, which forms are offered, and the list of destinations with their buttons. */
    render() {
        this._frame.set('notifications', () => {
            const d = this._dom;
            const on = this.pushOn;
            d.pushToggle.setAttribute('aria-pressed', on ? 'true' : 'false');
            d.pushToggle.disabled = this.busy || this.available !== true || !this.pushSupported || !this.channels.includes('push');
            d.pushToggle.querySelector('.btn-text').textContent = on ? 'Push on' : 'Push off';
            d.webhookForm.hidden = this.available !== true || !this.channels.includes('webhook');
            d.emailForm.hidden = this.available !== true || !this.channels.includes('email');
            const list = d.destinations;
            list.replaceChildren();
            for (const [channel, { path, label }] of Object.entries(CHANNELS)) {
                for (const dest of this.destinations[path]) list.appendChild(this._item(channel, label, dest));
            }
        });
    }

    _item(channel, label, dest) {
        let target = dest.url || dest.address || '';
        if (channel === 'push') {
            const mine = this.subscription && dest.endpoint === this.subscription.endpoint;
            let host;
            try {
                host = new URL(dest.endpoint).host;
            } catch (_) {
                host = '';
            }
            target = mine ? 'this browser' : 'another browser (' + host + ')';
        }
        const li = el('li', 'destination');
        li.dataset.channel = channel;
        li.dataset.destinationId = String(dest.id);
        const text = el('div', 'destination-text');
        text.append(el('span', 'tag', label), el('span', 'destination-target', target));
        const result = el('p', 'destination-result', this.results.get(channel + ':' + dest.id) || '');
        result.setAttribute('role', 'status');
        const buttons = el('div', 'rule-buttons');
        const test = el('button', 'btn btn-ghost btn-mini', 'Test');
        test.type = 'button';
        test.dataset.action = 'test';
        test.setAttribute('aria-label', 'Send a test to ' + label + ' ' + target);
        const del = el('button', 'icon-btn', '×');
        del.type = 'button';
        del.dataset.action = 'remove';
        del.setAttribute('aria-label', 'Remove ' + label + ' ' + target);
        buttons.append(test, del);
        li.append(text, buttons, result);
        return li;
    }
}
