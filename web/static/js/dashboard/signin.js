// @ts-check
/**
 * Legend Realtime dashboard — sign-in (JWT mode): the server's auth mode, the token check before
 * connecting, the sign-in panel, and what to say when a token expired or was refused.
 * Methods of RealtimeDashboard (dashboard.js installs them); their state: authMode, loginUrl, signedOut,
 * expiresAt.
 */
import { USER_ID_RE, fmtClock, fullFormat, parseTime } from './format.js';
import { errorText } from './rest.js';
import { KEYS, storage } from './storage.js';

/** @typedef {import('./types.js').Dashboard} Dashboard */

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

/** @satisfies {ThisType<Dashboard>} */
export const signin = {
    /** Learn the server's auth mode and login URL; false when the server could not say. */
    async _loadAuthConfig() {
        const res = await this.api.get('/api/auth/config', { quiet: true });
        if (this.destroyed || !res.ok || !res.data || (res.data.mode !== 'dev' && res.data.mode !== 'jwt')) return false;
        this.authMode = res.data.mode;
        this.loginUrl = safeLink(res.data.login_url, window.location.href);
        return true;
    },

    /**
     * Before connecting: in JWT mode, is there a token the server accepts? Resolves to true to go on
     * (signed in, development mode, or a server that cannot say: the socket will tell), false when
     * the sign-in panel is shown instead.
     */
    async _checkAuth() {
        await this._loadAuthConfig();
        if (this.destroyed) return false;
        if (this.authMode === 'dev') return true;
        const token = storage.get(KEYS.token);
        if (!token) {
            if (this.authMode !== 'jwt') return true;
            this._showSignIn(null);
            return false;
        }
        const me = await this.api.get('/api/auth/me', { quiet: true });
        if (this.destroyed) return false;
        if (me.ok && me.data && typeof me.data.user_id === 'string') {
            this._signedIn(me.data);
            return true;
        }
        if (me.status === 401) {
            this._showSignIn(this._refusal(me.data && me.data.detail, token));
            return false;
        }
        return true;
    },

    _signedIn(me) {
        if (USER_ID_RE.test(me.user_id) && me.user_id !== this.userId) {
            this.userId = me.user_id;
            this.lastSeen = Number(storage.get(KEYS.lastSeen(this.userId))) || null;
        }
        this.expiresAt = parseTime(me.expires_at);
        this._renderUser(this.userId);
        const until = this.expiresAt ? ' until ' + fullFormat.format(this.expiresAt) : '';
        this.frame.set('signed-in', () => {
            this.dom.user.title = 'Signed in as ' + this.userId + until;
            this.dom.signOut.hidden = false;
        });
    },

    /** What to tell the user when the server refused their token (`reason`: its words). */
    _refusal(reason, token) {
        const text = String(reason || '').replace(/^authentication required: /, '');
        if (/token expired/.test(text)) {
            const claims = decodeToken(token || storage.get(KEYS.token));
            const exp = claims && typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : null;
            return 'Your session expired' + (exp ? ' at ' + fmtClock(exp) : '') + '. Sign in again to keep streaming.';
        }
        if (/missing token/.test(text)) return null;
        return 'The server refused your token (' + (text || 'not accepted') + '). Sign in again.';
    },

    /** A REST call answered 401: in JWT mode the token expired or was refused. */
    _onUnauthorized(res) {
        if (this.authMode === 'dev' || this.destroyed) return;
        this._showSignIn(this._refusal(res.data && res.data.detail));
    },

    /** Stop streaming and show the sign-in panel, with `message` (why) when there is one. */
    _showSignIn(message) {
        if (this.destroyed) return;
        const again = this.signedOut;
        this.signedOut = true;
        if (this.ws.state !== 'closed') this.ws.disconnect(1000, 'signed out');
        this.closeChart();
        this.toggleStats(false);
        this.status.showBanner(null);
        this.status.render('closed');
        const d = this.dom;
        if (!again || message) {
            this.frame.set('signin-message', () => {
                d.signinMessage.hidden = !message;
                d.signinMessage.textContent = message || '';
            });
        }
        this.frame.set('signin', () => {
            document.body.dataset.auth = 'signed-out';
            d.layout.hidden = true;
            d.signin.hidden = false;
            d.signOut.hidden = true;
            d.signinLogin.hidden = !this.loginUrl;
            if (this.loginUrl) d.signinLogin.href = this.loginUrl;
            if (!again) d.signinToken.focus();
        });
    },

    /**
     * Use a pasted token: checked with the server first (GET /api/auth/me), then kept in
     * localStorage and the page reloads signed in. Resolves to {ok, error}.
     */
    async signIn(raw) {
        const token = String(raw === null || raw === undefined ? '' : raw).trim().replace(/^Bearer\s+/i, '');
        const fail = (text) => {
            this._showError(this.dom.signinError, text);
            return { ok: false, error: text };
        };
        if (!token) return fail('Paste your access token first.');
        if (!decodeToken(token)) return fail('That is not an access token: a token is three parts separated by dots (eyJ….eyJ….…).');
        const res = await this.api.get('/api/auth/me', { token: token, quiet: true });
        if (this.destroyed) return { ok: false };
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
        this._showError(this.dom.signinError, null);
        this._reload();
        return { ok: true, user: res.data && res.data.user_id };
    },

    /** Forget the token and show the sign-in panel. */
    signOut() {
        storage.set(KEYS.token, null);
        this._showSignIn(null);
    },

    _reload() {
        window.location.reload();
    },
};
