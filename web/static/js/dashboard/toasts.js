// @ts-check
/**
 * Legend Realtime dashboard — notifications (toasts) for patterns and alert triggers: at most
 * MAX_TOASTS at once (the oldest go first), each dismissed after TOAST_MS or when clicked. An object of
 * its own (the dashboard's `toasts`): it gets their container, the frame batch, the dashboard's timer
 * functions (so destroy() clears its timers too) and the exchange's time zone (times read like the
 * market badge's, the browser's own on hover).
 */
import { el } from './dom.js';
import { fmtEventTime } from './format.js';

/** @typedef {import('./dom.js').FrameBatch} FrameBatch */
/** @typedef {{kind: string, time: Date, title: string, body: string, detail?: string}} ToastItem */

export const MAX_TOASTS = 4;
export const TOAST_MS = 8000;

export class Toasts {
    /**
     * @param {object} parts
     * @param {any} parts.container the element toasts are shown in
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies DOM changes once per frame
     * @param {(fn: () => void, ms: number) => number} parts.later runs fn after ms unless the page is destroyed
     * @param {(id: number) => void} parts.cancel cancels what later() scheduled
     * @param {() => string | null} parts.zone the exchange's time zone (null: the browser's)
     */
    constructor({ container, frame, later, cancel, zone }) {
        this._zone = zone;
        this._container = container;
        this._frame = frame;
        this._later = later;
        this._cancel = cancel;
        /** @type {Set<any>} the toasts shown, oldest first */
        this._shown = new Set();
        /** @type {WeakMap<object, number>} toast -> the timer that dismisses it */
        this._timers = new WeakMap();
    }

    /** How many toasts are shown. */
    get size() {
        return this._shown.size;
    }

    /**
     * Show a notification.
     * @param {ToastItem} item
     */
    show(item) {
        const node = el('div', 'toast toast-' + item.kind);
        node.setAttribute('role', item.kind === 'alert' ? 'alert' : 'status');
        const icon = el('span', 'toast-icon');
        icon.setAttribute('aria-hidden', 'true');
        const body = el('div', 'toast-body');
        const head = el('div', 'toast-head');
        head.appendChild(el('span', 'toast-kind', item.kind === 'alert' ? 'Alert triggered' : 'Pattern detected'));
        const when = fmtEventTime(item.time, this._zone());
        const time = el('time', 'toast-time', when.text);
        time.dateTime = item.time.toISOString();
        time.title = when.title;
        head.appendChild(time);
        body.append(head, el('div', 'toast-title', item.title), el('div', 'toast-text', item.body));
        if (item.detail) body.appendChild(el('div', 'toast-detail', item.detail));
        const close = el('button', 'toast-close', '×');
        close.type = 'button';
        close.setAttribute('aria-label', 'Dismiss');
        node.append(icon, body, close);
        this._shown.add(node);
        const overflow = [];
        for (const t of this._shown) {
            if (this._shown.size - overflow.length <= MAX_TOASTS) break;
            overflow.push(t);
        }
        for (const t of overflow) this._shown.delete(t);
        this._frame.set(node, () => {
            for (const t of overflow) t.remove();
            if (this._shown.has(node)) this._container.appendChild(node);
        });
        this._timers.set(node, this._later(() => this.dismiss(node), TOAST_MS));
    }

    /**
     * Dismiss a toast (it slides out).
     * @param {any} node
     */
    dismiss(node) {
        if (!this._shown.delete(node)) return;
        this._cancel(this._timers.get(node));
        this._frame.set(node, () => node.classList.add('toast-leaving'));
        this._later(() => node.remove(), 220);
    }
}
