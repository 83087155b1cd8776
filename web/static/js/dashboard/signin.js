// @ts-check
/**
 * Legend Realtime dashboard — sign-in (JWT mode): the server's auth mode, the token check before
 * connecting, the sign-in panel, and what to say when a token expired or was refused.
 * An object of its own (the dashboard's `signin`): it gets the REST client, its elements, the frame
 * batch, how to show an error, and functions for what it asks of the page (take the user id the server
 * names, stop streaming, reload, whether the page is gone); it keeps the auth mode, the login URL,
 * whether the user signed out and when the token expires.
 */
import { fmtClock, fullFormat, parseTime } from './format.js';
import { errorText } from './rest.js';
import { KEYS, storage } from './storage.js';

/** @typedef {import('./rest.js').Api} Api */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */

export function base64UrlDecode(text) {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
    const binary = atob(b64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new TextDecoder().decode(bytes);
}

/**
 * The claims of a JWT, read without checking its signature (only the server can): enough to tell a
 * pasted token from something else and to show when it expires. Null when it is not a JWT.
 */
export function decodeToken(token) {
    const parts = String(token === null || token === undefined ? '' : token).trim().split('.');
    if (parts.length !== 3 || !parts[0] || !parts[1] || !parts.every((p) => /^[A-Za-z0-9_-]*$/.test(p))) return null;
    try {
        const header = JSON.parse(base64UrlDecode(parts[0]));
        const claims = JSON.parse(base64UrlDecode(parts[1]));
        if (!header || typeof header !== 'object' || !claims || typeof claims !== 'object' || Array.isArray(claims)) return null;
        return claims;
    } catch (_) {
        return null;
    }
}

/**
 * A token handed over in the page address by a login service: /dashboard#token=<JWT>, or an identity
 * provider's OAuth 2.0 implicit-flow answer (#access_token=<JWT>&token_type=Bearer…; #id_token= when that
 * is all it sent). Opaque (non-JWT) tokens are ignored: the server could not verify them.
 */
export function tokenFromHash(hash) {
    const text = String(hash || '').replace(/^#/, '');
    if (!text) return null;
    const params = new URLSearchParams(text);
    for (const name of ['token', 'access_token', 'id_token']) {
        const token = params.get(name);
        if (token && decodeToken(token)) return token;
    }
    return null;
}

/** `url` when it is a web address or a path on this server (never javascript: or data:), else null. */
export function safeLink(url, base) {
    if (typeof url !== 'string' || !url) return null;
    try {
        const parsed = new URL(url, base);
        return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
    } catch (_) {
        return null;
    }
}

export class SignIn {
    /**
     * @param {object} parts
     * @param {Pick<Api, 'get'>} parts.api the REST client
     * @param {Record<string, any>} parts.dom user, signOut, layout, signin, signinMessage, signinLogin, signinToken, signinError
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies DOM changes once per frame
     * @param {(node: any, text: string | null) => void} parts.showError shows (null: hides) a form's error
     * @param {(userId: string) => string} parts.signedInAs the server named the user: the page takes that id
     *     when it is a valid one; returns the id the page now shows
     * @param {() => void} parts.stop stop streaming and close what shows it (socket, chart, statistics, banner)
     * @param {() => void} parts.reload reload the page (once a token was accepted)
     * @param {() => boolean} parts.destroyed whether the page was destroyed (answers arriving later are ignored)
     */
    constructor({ api, dom, frame, showError, signedInAs, stop, reload, destroyed }) {
        this._api = api;
        this._dom = dom;
        this._frame = frame;
        this._showError = showError;
        this._signedInAs = signedInAs;
        this._stop = stop;
        this._reload = reload;
        this._destroyed = destroyed;
        /** @type {'unknown' | 'dev' | 'jwt'} the server's auth mode, once GET /api/auth/config answered */
        this.mode = 'unknown';
        /** @type {string | null} where the "Sign in" button leads (security.login_url) */
        this.loginUrl = null;
        /** Whether the sign-in panel is shown instead of the stream. */
        this.signedOut = false;
        /** @type {Date | null} when the token expires (JWT mode) */
        this.expiresAt = null;
    }

    /** The token to send (REST and socket): the stored one, except in development mode, where it means nothing to the server. */
    token() {
        return this.mode === 'dev' ? null : storage.get(KEYS.token);
    }

    /** Learn the server's auth mode and login URL; false when the server could not say. */
    async loadConfig() {
        const res = await this._api.get('/api/auth/config', { quiet: true });
        if (this._destroyed() || !res.ok || !res.data || (res.data.mode !== 'dev' && res.data.mode !== 'jwt')) return false;
        this.mode = res.data.mode;
        this.loginUrl = safeLink(res.data.login_url, window.location.href);
        return true;
    }

    /**
     * Before connecting: in JWT mode, is there a token the server accepts? Resolves to true to go on
     * (signed in, development mode, or a server that cannot say: the socket will tell), false when
     * the sign-in panel is shown instead.
     */
    async check() {
        await this.loadConfig();
        if (this._destroyed()) return false;
        if (this.mode === 'dev') return true;
        const token = storage.get(KEYS.token);
        if (!token) {
            if (this.mode !== 'jwt') return true;
            this.show(null);
            return false;
        }
        const me = await this._api.get('/api/auth/me', { quiet: true });
        if (this._destroyed()) return false;
        if (me.ok && me.data && typeof me.data.user_id === 'string') {
            this._signedIn(me.data);
            return true;
        }
        if (me.status === 401) {
            this.refused(me.data && me.data.detail, token);
            return false;
        }
        return true;
    }

    _signedIn(me) {
        const userId = this._signedInAs(me.user_id);
        this.expiresAt = parseTime(me.expires_at);
        const until = this.expiresAt ? ' until ' + fullFormat.format(this.expiresAt) : '';
        this._frame.set('signed-in', () => {
            this._dom.user.title = 'Signed in as ' + userId + until;
            this._dom.signOut.hidden = false;
        });
    }

    /**
     * What to tell the user when the server refused their token (`reason`: its words), or null.
     * @param {unknown} reason
     * @param {string | null} [token] the refused token (default: the stored one)
     */
    refusal(reason, token) {
        const text = String(reason || '').replace(/^authentication required: /, '');
        if (/token expired/.test(text)) {
            const claims = decodeToken(token || storage.get(KEYS.token));
            const exp = claims && typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : null;
            return 'Your session expired' + (exp ? ' at ' + fmtClock(exp) : '') + '. Sign in again to keep streaming.';
        }
        if (/missing token/.test(text)) return null;
        return 'The server refused your token (' + (text || 'not accepted') + '). Sign in again.';
    }

    /**
     * The server refused the token (a close 4401, a 401): show the sign-in panel saying why.
     * @param {unknown} reason the server's words
     * @param {string | null} [token] the refused token (default: the stored one)
     */
    refused(reason, token) {
        this.show(this.refusal(reason, token));
    }

    /**
     * A REST call answered 401: in JWT mode the token expired or was refused.
     * @param {{data?: any}} res
     */
    onUnauthorized(res) {
        if (this.mode === 'dev' || this._destroyed()) return;
        this.refused(res.data && res.data.detail);
    }

    /**
     * Stop streaming and show the sign-in panel, with `message` (why) when there is one.
     * @param {string | null} message
     */
    show(message) {
        if (this._destroyed()) return;
        const again = this.signedOut;
        this.signedOut = true;
        this._stop();
        const d = this._dom;
        if (!again || message) {
            this._frame.set('signin-message', () => {
                d.signinMessage.hidden = !message;
                d.signinMessage.textContent = message || '';
            });
        }
        this._frame.set('signin', () => {
            document.body.dataset.auth = 'signed-out';
            d.layout.hidden = true;
            d.signin.hidden = false;
            d.signOut.hidden = true;
            d.signinLogin.hidden = !this.loginUrl;
            if (this.loginUrl) d.signinLogin.href = this.loginUrl;
            if (!again) d.signinToken.focus();
        });
    }

    /**
     * Use a pasted token: checked with the server first (GET /api/auth/me), then kept in
     * localStorage and the page reloads signed in. Resolves to {ok, error}.
     * @param {unknown} raw
     * @returns {Promise<{ok: boolean, error?: string, user?: string}>}
     */
    async signIn(raw) {
        const token = String(raw === null || raw === undefined ? '' : raw).trim().replace(/^Bearer\s+/i, '');
        const fail = (text) => {
            this._showError(this._dom.signinError, text);
            return { ok: false, error: text };
        };
        if (!token) return fail('Paste your access token first.');
        if (!decodeToken(token)) return fail('That is not an access token: a token is three parts separated by dots (eyJ….eyJ….…).');
        const res = await this._api.get('/api/auth/me', { token: token, quiet: true });
        if (this._destroyed()) return { ok: false };
        if (res.status === 401) {
            const reason = String((res.data && res.data.detail) || '').replace(/^authentication required: /, '');
            if (/token expired/.test(reason)) {
                const exp = decodeToken(token).exp;
                return fail('This token expired' + (typeof exp === 'number' ? ' at ' + fullFormat.format(new Date(exp * 1000)) : '') + ': ask for a new one.');
            }
            return fail('The server refused this token: ' + (reason || 'not accepted') + '.');
        }
        if (!res.ok) return fail(errorText(res, 'Could not check the token'));
        storage.set(KEYS.token, token);
        this._showError(this._dom.signinError, null);
        this._reload();
        return { ok: true, user: res.data && res.data.user_id };
    }

    /** Forget the token and show the sign-in panel. */
    signOut() {
        storage.set(KEYS.token, null);
        this.show(null);
    }
}
