// @ts-check
/**
 * Legend Realtime dashboard — writing to the page: the text write cache (DomWriter), one keyed animation
 * frame for everything else (FrameBatch), and el() to make elements. The client (client/) never touches
 * the DOM; WebSocketClient's updateElementIfChanged() (the specification's, docs/protocol.md) is a
 * DomWriter's write().
 */
import { DEFAULTS, nonNegative, positive } from '../client/codes.js';

/**
 * @typedef {object} DomWriterOptions
 * @property {number} [batchUpdateDelay] at least this many ms between two flushes (100)
 * @property {number} [maxCacheSize] elements whose text is remembered (5000); the oldest are forgotten
 * @property {(callback: (time: number) => void) => unknown} [requestAnimationFrame]
 * @property {(fn: () => void, ms: number) => unknown} [setTimeout]
 * @property {(id: unknown) => void} [clearTimeout]
 * @property {() => number} [now]
 * @property {(level: 'error', ...args: unknown[]) => void} [log] where failures are reported
 */

/** Something whose text can be written: an Element, or a stand-in in tests. */
/** @typedef {{textContent: string | null, isConnected?: boolean, contains?: (node: any) => boolean}} TextTarget */

/**
 * Change-detected text writes, applied together in one requestAnimationFrame callback at most once
 * every `batchUpdateDelay` ms. It remembers the text each element shows (bounded by `maxCacheSize`, the
 * oldest forgotten first); call forgetWithin(row) when removing elements so it does not keep them.
 */
export class DomWriter {
    /** @param {DomWriterOptions} [options] */
    constructor(options) {
        const opts = options || {};
        const g = globalThis;
        this.batchUpdateDelay = nonNegative(opts.batchUpdateDelay, DEFAULTS.batchUpdateDelay);
        this.maxCacheSize = Math.max(1, Math.floor(positive(opts.maxCacheSize, DEFAULTS.maxCacheSize)));
        this._setTimeout = opts.setTimeout || ((fn, ms) => g.setTimeout(fn, ms));
        this._clearTimeout = opts.clearTimeout || ((id) => g.clearTimeout(/** @type {any} */ (id)));
        this._now = opts.now || (() => Date.now());
        if (typeof opts.requestAnimationFrame === 'function') {
            this._raf = opts.requestAnimationFrame;
        } else if (typeof g.requestAnimationFrame === 'function') {
            this._raf = (/** @type {FrameRequestCallback} */ cb) => g.requestAnimationFrame(cb);
        } else {
            this._raf = (/** @type {(time: number) => void} */ cb) => this._setTimeout(() => cb(this._now()), 0);
        }
        this._log = opts.log || ((level, ...args) => console[level](...args));
        /** @type {Map<TextTarget, string>} element -> text last written or pending */
        this._cache = new Map();
        /** @type {Map<TextTarget, string>} element -> text to write in the next frame */
        this._pending = new Map();
        this._flushScheduled = false;
        /** @type {unknown} */
        this._flushTimer = null;
        this._lastFlushAt = -Infinity;
        this._destroyed = false;
        this.updatesApplied = 0;
        this.errors = 0;
    }

    /**
     * Queue `element.textContent = formatter(value)` unless that text is already shown (or queued).
     * @param {TextTarget | null | undefined} element
     * @param {unknown} value
     * @param {(value: any) => unknown} [formatter]
     * @returns {boolean} true if a write was queued
     */
    write(element, value, formatter) {
        if (!element || this._destroyed) return false;
        let text;
        try {
            text = typeof formatter === 'function' ? formatter(value) : value;
        } catch (err) {
            this.errors++;
            this._log('error', 'WebSocketClient: formatter failed', err);
            return false;
        }
        text = text === null || text === undefined ? '' : String(text);
        if (this._cache.get(element) === text) return false;
        this._cache.delete(element); // re-insert: the Map's order is the eviction order
        this._cache.set(element, text);
        while (this._cache.size > this.maxCacheSize) {
            this._cache.delete(/** @type {TextTarget} */ (this._cache.keys().next().value));
        }
        this._pending.set(element, text);
        this._scheduleFlush();
        return true;
    }

    _scheduleFlush() {
        if (this._flushScheduled) return;
        this._flushScheduled = true;
        const wait = Math.max(0, this._lastFlushAt + this.batchUpdateDelay - this._now());
        const request = () => {
            this._flushTimer = null;
            this._raf(() => this._flush());
        };
        if (wait > 0) this._flushTimer = this._setTimeout(request, wait);
        else request();
    }

    _flush() {
        this._flushScheduled = false;
        if (this._destroyed) return;
        this._lastFlushAt = this._now();
        const writes = this._pending;
        this._pending = new Map();
        for (const [element, text] of writes) {
            try {
                if (element.textContent !== text) {
                    element.textContent = text;
                    this.updatesApplied++;
                }
                if (element.isConnected === false) this._cache.delete(element); // removed from the page
            } catch (err) {
                this.errors++;
                this._log('error', 'WebSocketClient: DOM update failed', err);
            }
        }
    }

    /** Forget every cached value (the next update of each element is written again). */
    clear() {
        this._cache.clear();
    }

    /**
     * Forget `element` (cached value and pending write): call it when the element leaves the page, so
     * the cache does not keep it alive. Returns true when something was forgotten.
     * @param {TextTarget | null | undefined} element
     */
    forget(element) {
        if (!element) return false;
        const cached = this._cache.delete(element);
        const pending = this._pending.delete(element);
        return cached || pending;
    }

    /**
     * Forget `root` and every cached element inside it (root.contains()), e.g. a removed table row and
     * its cells. Returns how many elements were forgotten.
     * @param {TextTarget | null | undefined} root
     */
    forgetWithin(root) {
        if (!root) return 0;
        const contains = root.contains;
        const inside = typeof contains === 'function'
            ? (/** @type {TextTarget} */ node) => {
                try {
                    return node === root || contains.call(root, node);
                } catch (_) {
                    return false;
                }
            }
            : (/** @type {TextTarget} */ node) => node === root;
        let count = 0;
        for (const map of [this._cache, this._pending]) {
            for (const node of Array.from(map.keys())) {
                if (inside(node) && map.delete(node) && map === this._cache) count++;
            }
        }
        return count;
    }

    /** Drop pending writes and the cache, and write nothing more. */
    destroy() {
        this._destroyed = true;
        if (this._flushTimer !== null) this._clearTimeout(this._flushTimer);
        this._flushTimer = null;
        this._pending.clear();
        this._cache.clear();
    }

    /** The specification's getStats() figures of DOM writes, and the failures counted. */
    stats() {
        return {
            updatesApplied: this.updatesApplied,
            pendingUpdates: this._pending.size,
            cacheSize: this._cache.size,
            errors: this.errors,
        };
    }
}

/**
 * DOM work other than text (classes, attributes, charts), applied together in one animation frame.
 * Work is keyed: scheduling the same key again before the frame replaces the earlier work.
 */
export class FrameBatch {
    constructor() {
        /** @type {Map<unknown, () => void>} */
        this._work = new Map();
        /** @type {number | null} */
        this._frame = null;
    }

    /**
     * @param {unknown} key
     * @param {() => void} fn
     */
    set(key, fn) {
        this._work.delete(key); // keep insertion order = order of the latest request
        this._work.set(key, fn);
        if (this._frame === null) this._frame = window.requestAnimationFrame(() => this._run());
    }

    /** @param {unknown} key */
    delete(key) {
        this._work.delete(key);
    }

    _run() {
        this._frame = null;
        const work = this._work;
        this._work = new Map();
        for (const fn of work.values()) {
            try {
                fn();
            } catch (err) {
                console.warn('realtime-dashboard: render failed', err);
            }
        }
    }

    clear() {
        if (this._frame !== null) window.cancelAnimationFrame(this._frame);
        this._frame = null;
        this._work.clear();
    }
}

/**
 * A new element with a class and text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string | null} [className]
 * @param {string | null} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
}
