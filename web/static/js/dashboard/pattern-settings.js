// @ts-check
/**
 * Legend Realtime dashboard — the pattern settings of the Activity card: which pattern types, from which
 * score, only the watchlist's tickers. They are the `patterns` subscription's filter (docs/protocol.md,
 * "Filters"), so the server sends only what matches (nothing else counts against the connection's
 * budget), and the Activity list keeps only what matches. Kept in this browser, per user.
 * PatternSettings is an object of its own (the dashboard's `patternSettings`): it gets its form's
 * elements, the frame batch, who the user is, and what to call after a change.
 */
import { el } from './dom.js';
import { num, parseTicker } from './format.js';
import { KEYS, storage } from './storage.js';

/** @typedef {import('./dom.js').FrameBatch} FrameBatch */
/** @typedef {import('../client/types.js').Filter} Filter */
/**
 * What the user chose: no type means every type, minScore null any score.
 * @typedef {{types: string[], minScore: number | null, watchlistOnly: boolean}} PatternPrefs
 */

/** The built-in scanner's pattern types (docs/plugins.md); admins broadcast others, added as they are seen. */
export const KNOWN_PATTERN_TYPES = ['BREAKOUT', '52_WEEK_HIGH', 'NEW_HIGH', 'GAP_UP', 'GAP_DOWN', 'VCP'];
/** At most this many types are offered (and remembered as seen). */
export const MAX_PATTERN_TYPES = 24;
const MAX_TYPE_LENGTH = 64;

/** A pattern type as it may be offered: a non-empty string of at most 64 characters, else null. */
function typeOf(value) {
    if (typeof value !== 'string') return null;
    const t = value.trim();
    return t !== '' && t.length <= MAX_TYPE_LENGTH ? t : null;
}

/** @param {unknown} list */
function typeList(list) {
    if (!Array.isArray(list)) return [];
    return Array.from(new Set(list.map(typeOf).filter((t) => t !== null))).slice(0, MAX_PATTERN_TYPES);
}

/**
 * Settings read back from storage (or anything else): what is not understood is left at its default.
 * @param {unknown} raw
 * @returns {PatternPrefs & {seen: string[]}}
 */
export function parsePrefs(raw) {
    const o = raw && typeof raw === 'object' && !Array.isArray(raw) ? /** @type {Record<string, unknown>} */ (raw) : {};
    const score = typeof o.minScore === 'number' && Number.isFinite(o.minScore) ? o.minScore : null;
    return {
        types: typeList(o.types),
        minScore: score !== null && score >= 0 ? score : null,
        watchlistOnly: o.watchlistOnly === true,
        seen: typeList(o.seen),
    };
}

/**
 * The `patterns` subscription's filter for these settings; null when they keep everything.
 * @param {PatternPrefs} prefs
 * @returns {Filter | null}
 */
export function patternFilter(prefs) {
    /** @type {Filter} */
    const filter = {};
    if (prefs.types.length) filter.pattern_type = { in: prefs.types.slice() };
    if (prefs.minScore !== null) filter.score = { gte: prefs.minScore };
    if (prefs.watchlistOnly) filter.ticker = 'watchlist';
    return Object.keys(filter).length ? filter : null;
}

/**
 * Whether a pattern_alert passes these settings: what the server's filter would say of it.
 * @param {PatternPrefs} prefs
 * @param {any} msg
 * @param {(ticker: string | null) => boolean} onWatchlist
 */
export function matchesPrefs(prefs, msg, onWatchlist) {
    if (!msg || typeof msg !== 'object') return false;
    if (prefs.types.length && !prefs.types.includes(msg.pattern_type)) return false;
    if (prefs.minScore !== null && !(typeof msg.score === 'number' && msg.score >= prefs.minScore)) return false;
    if (prefs.watchlistOnly && !onWatchlist(parseTicker(msg.ticker))) return false;
    return true;
}

/**
 * A pattern type as people read it: '52_WEEK_HIGH' → '52 week high', 'BREAKOUT' → 'Breakout'; a short
 * word ('VCP') and anything not in capitals stay as they are.
 * @param {string} type
 */
export function typeLabel(type) {
    const words = type.replace(/_/g, ' ');
    const acronym = type.length <= 4 && !type.includes('_');
    return /^[A-Z0-9 ]+$/.test(words) && !acronym ? words.charAt(0) + words.slice(1).toLowerCase() : words;
}

/**
 * The settings in a few words (shown beside the settings' title): 'All patterns', 'VCP · score ≥ 8 · watchlist'.
 * @param {PatternPrefs} prefs
 */
export function describePrefs(prefs) {
    const parts = [];
    if (prefs.types.length) parts.push(prefs.types.length <= 2 ? prefs.types.map(typeLabel).join(', ') : prefs.types.length + ' types');
    if (prefs.minScore !== null) parts.push('score ≥ ' + prefs.minScore);
    if (prefs.watchlistOnly) parts.push('watchlist');
    return parts.length ? parts.join(' · ') : 'All patterns';
}

/**
 * A type's box: `<label class="check"><input type="checkbox" name="pattern-type" value="VCP"> VCP</label>`.
 * @param {string} type
 * @param {boolean} checked
 */
function typeBox(type, checked) {
    const input = /** @type {HTMLInputElement} */ (el('input'));
    input.type = 'checkbox';
    input.name = 'pattern-type';
    input.value = type;
    input.checked = checked;
    const label = el('label', 'check');
    label.append(input, ' ' + typeLabel(type));
    return label;
}

export class PatternSettings {
    /**
     * @param {object} parts
     * @param {Record<string, any>} parts.dom patternForm, patternTypes (where the type boxes go),
     *   patternMinScore, patternWatchlist, patternSummary, patternError
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies DOM changes once per frame
     * @param {() => string} parts.userId whose settings these are (they are kept per user)
     * @param {(prefs: PatternPrefs) => void} parts.onChange called after the user changed them
     */
    constructor({ dom, frame, userId, onChange }) {
        this._dom = dom;
        this._frame = frame;
        this._userId = userId;
        this._onChange = onChange;
        /** @type {PatternPrefs} */
        this.prefs = { types: [], minScore: null, watchlistOnly: false };
        /** @type {string[]} types seen in pattern alerts, beyond the known ones */
        this._seen = [];
        this.load();
    }

    /** The types offered: the known ones, the chosen ones, then those seen. */
    get types() {
        return Array.from(new Set([...KNOWN_PATTERN_TYPES, ...this.prefs.types, ...this._seen])).slice(0, MAX_PATTERN_TYPES);
    }

    /** The filter of the `patterns` subscription now (null: everything). */
    filter() {
        return patternFilter(this.prefs);
    }

    /** Read this user's settings from this browser and show them. */
    load() {
        let raw;
        try {
            raw = JSON.parse(storage.get(KEYS.patternSettings(this._userId())) || 'null');
        } catch (_) {
            raw = null; // unreadable: the defaults
        }
        const parsed = parsePrefs(raw);
        this.prefs = { types: parsed.types, minScore: parsed.minScore, watchlistOnly: parsed.watchlistOnly };
        this._seen = parsed.seen;
        this.render();
    }

    _save() {
        const value = { ...this.prefs, seen: this._seen };
        storage.set(KEYS.patternSettings(this._userId()), JSON.stringify(value));
    }

    /** Show the settings: a box per type, the score, watchlist only, and their summary. */
    render() {
        const dom = this._dom;
        const prefs = this.prefs;
        const types = this.types;
        this._frame.set('pattern-settings', () => {
            dom.patternTypes.replaceChildren(...types.map((type) => typeBox(type, prefs.types.includes(type))));
            dom.patternMinScore.value = prefs.minScore === null ? '' : String(prefs.minScore);
            dom.patternWatchlist.checked = prefs.watchlistOnly;
            dom.patternSummary.textContent = describePrefs(prefs);
        });
    }

    /** What the form says now (a change of one of its fields): kept, shown, and passed on when it differs. */
    readForm() {
        const dom = this._dom;
        const boxes = Array.from(dom.patternTypes.querySelectorAll('input[name="pattern-type"]'));
        const types = boxes.filter((b) => b.checked).map((b) => String(b.value));
        const raw = String(dom.patternMinScore.value).trim();
        const score = raw === '' ? null : num(raw);
        const next = parsePrefs({ types: types, minScore: score, watchlistOnly: !!dom.patternWatchlist.checked });
        /** @type {PatternPrefs} */
        const prefs = { types: next.types, minScore: next.minScore, watchlistOnly: next.watchlistOnly };
        if (raw !== '' && prefs.minScore === null) {
            this.showError('The minimum score is a number, 0 or more.');
            return false;
        }
        this.showError(null);
        if (JSON.stringify(prefs) === JSON.stringify(this.prefs)) return false;
        this.prefs = prefs;
        this._save();
        this._frame.set('pattern-summary', () => {
            dom.patternSummary.textContent = describePrefs(prefs);
        });
        this._onChange(prefs);
        return true;
    }

    /**
     * A pattern type seen in an alert: offered from now on (and remembered) when it is a new one.
     * @param {unknown} type
     */
    noteType(type) {
        const t = typeOf(type);
        if (t === null || this.types.includes(t) || this.types.length >= MAX_PATTERN_TYPES) return false;
        this._seen.push(t);
        this._save();
        const list = this._dom.patternTypes;
        this._frame.set('pattern-type:' + t, () => list.appendChild(typeBox(t, false))); // the rest as the user left it
        return true;
    }

    /**
     * Show (null: hide) why the settings could not be applied.
     * @param {string | null} text
     */
    showError(text) {
        const node = this._dom.patternError;
        this._frame.set(node, () => {
            node.hidden = !text;
            node.textContent = text || '';
        });
    }
}
