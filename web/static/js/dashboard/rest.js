// @ts-check
/**
 * Legend Realtime dashboard — REST calls to this server, as the signed-in user (a bearer token) or the
 * development identity (X-User-Id).
 */

/** The most useful line of a REST error answer (Litestar: {detail, extra: [{message}]}). */
export function errorText(res, fallback) {
    const data = res && res.data;
    if (data && typeof data === 'object') {
        if (Array.isArray(data.extra) && data.extra.length && data.extra[0] && data.extra[0].message) {
            return String(data.extra[0].message);
        }
        if (data.detail) return String(data.detail);
    }
    if (res && res.status === 0) return fallback + ': the server cannot be reached';
    return fallback + (res && res.status ? ' (HTTP ' + res.status + ')' : '');
}

export class Api {
    /** `onUnauthorized(res)` is called for every 401 answer, except to requests made with `quiet`. */
    constructor(userId, tokenFn, signal, onUnauthorized) {
        this.userId = userId;
        this.tokenFn = tokenFn;
        this.signal = signal;
        this.onUnauthorized = onUnauthorized || null;
    }

    /**
     * Resolves to {ok, status, data}; status 0 when the server cannot be reached. Never rejects.
     * `options.token` sends that token instead of the stored one; `options.quiet` skips onUnauthorized.
     */
    async request(method, path, body, options) {
        const opts = options || {};
        const headers = { Accept: 'application/json' };
        const token = opts.token || this.tokenFn();
        if (token) headers.Authorization = 'Bearer ' + token;
        else headers['X-User-Id'] = this.userId;
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        let res;
        try {
            res = await fetch(path, {
                method: method,
                headers: headers,
                body: body === undefined ? undefined : JSON.stringify(body),
                cache: 'no-store',
                credentials: 'same-origin',
                keepalive: method !== 'GET', // a change made just before leaving the page still lands
                signal: this.signal,
            });
        } catch (_) {
            return { ok: false, status: 0, data: null };
        }
        let data;
        try {
            const text = await res.text();
            data = text ? JSON.parse(text) : null;
        } catch (_) {
            data = null; // not JSON
        }
        const result = { ok: res.ok, status: res.status, data: data };
        if (res.status === 401 && !opts.quiet && this.onUnauthorized) this.onUnauthorized(result);
        return result;
    }

    get(path, options) {
        return this.request('GET', path, undefined, options);
    }

    post(path, body) {
        return this.request('POST', path, body);
    }

    patch(path, body) {
        return this.request('PATCH', path, body);
    }

    del(path) {
        return this.request('DELETE', path);
    }
}
