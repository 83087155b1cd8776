// @ts-check
/**
 * Legend Realtime dashboard — the notice that some alerts may be missing: after a connection problem
 * the server can say that messages of a stream are lost to this page (a `gap`, docs/protocol.md "Gaps");
 * the client reloads the stream's history, but what was lost stays lost, and the trader must not take
 * the Activity list for complete. Shown in the Activity card for the streams it lists (pattern alerts,
 * alert triggers) until the trader dismisses it or the server says a later recovery was complete.
 * An object of its own: it gets its elements and the frame batch, and keeps the gaps it shows.
 */

/** @typedef {import('./dom.js').FrameBatch} FrameBatch */
/** @typedef {import('../client/types.js').MessageInfo} MessageInfo */

/**
 * What a stream of the Activity list holds, in the notice's words; null for a stream it does not list
 * (its history is reloaded all the same, without a notice).
 * @param {string} stream
 * @returns {string | null}
 */
export function gapKind(stream) {
    if (stream === 'patterns') return 'pattern alerts';
    if (stream === 'alerts' || stream.startsWith('alerts:')) return 'alert triggers';
    return null;
}

/**
 * A stream's name for people: 'patterns', 'alerts', and 'your alerts' for the user's own stream.
 * @param {string} stream
 */
function streamName(stream) {
    return stream.startsWith('alerts:user:') ? 'your alerts' : stream;
}

/**
 * The notice's text for the gaps shown: "Some pattern alerts may be missing after a connection problem
 * (patterns 4–18); the list was reloaded."; '' for none.
 * @param {Map<string, {from: number, to: number}>} gaps stream -> the range lost, in the order heard
 * @param {boolean} reloaded whether the lists were reloaded
 */
export function gapNoticeText(gaps, reloaded) {
    if (gaps.size === 0) return '';
    /** @type {string[]} */
    const kinds = [];
    const ranges = [];
    for (const [stream, range] of gaps) {
        const kind = gapKind(stream);
        if (kind && !kinds.includes(kind)) kinds.push(kind);
        ranges.push(streamName(stream) + ' ' + range.from + (range.to === range.from ? '' : '–' + range.to));
    }
    return 'Some ' + kinds.join(' and ') + ' may be missing after a connection problem (' + ranges.join(', ') + ')'
        + (reloaded ? '; the list was reloaded.' : '.');
}

export class GapNotice {
    /**
     * @param {object} parts
     * @param {Record<string, any>} parts.dom gapNotice (the notice, inside a role=status region), gapText, gapDismiss
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies DOM changes once per frame
     */
    constructor({ dom, frame }) {
        this._dom = dom;
        this._frame = frame;
        /** @type {Map<string, {from: number, to: number}>} stream -> the range lost, shown */
        this._gaps = new Map();
        this._reloaded = true;
    }

    /** Whether the notice is shown. */
    get shown() {
        return this._gaps.size > 0;
    }

    /** The notice's text now ('' when hidden). */
    get text() {
        return gapNoticeText(this._gaps, this._reloaded);
    }

    /**
     * The client's `gap` event: messages of a stream are lost; show it when the Activity list holds them.
     * @param {unknown} _msg
     * @param {MessageInfo} info channel, from, to, reloading
     */
    onGap(_msg, info) {
        const stream = info && typeof info.channel === 'string' ? info.channel : null;
        if (!stream || !gapKind(stream) || typeof info.from !== 'number' || typeof info.to !== 'number') return;
        const known = this._gaps.get(stream);
        this._gaps.set(stream, known
            ? { from: Math.min(known.from, info.from), to: Math.max(known.to, info.to) }
            : { from: info.from, to: info.to });
        if (!info.reloading) this._reloaded = false;
        this._render();
    }

    /**
     * The client's `service_status` event: a later complete recovery (info.complete) clears the notice; an
     * ok that names gaps does not.
     * @param {unknown} _msg
     * @param {MessageInfo} info
     */
    onServiceStatus(_msg, info) {
        if (info && info.complete === true && this.shown) this.dismiss();
    }

    /** The trader read it (the Dismiss button), or it no longer holds: hide it. */
    dismiss() {
        this._gaps.clear();
        this._reloaded = true;
        this._render();
    }

    _render() {
        const text = this.text;
        this._frame.set('gap-notice', () => {
            this._dom.gapText.textContent = text;
            this._dom.gapNotice.hidden = !text;
        });
    }
}
