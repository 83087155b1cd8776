// @ts-check
/**
 * Legend Realtime dashboard — the Activity list: pattern detections and alert triggers, newest first,
 * without duplicates (by key), at most MAX_FEED (pattern detections that no longer pass the pattern
 * settings are taken out: removePatterns); missed ones newer than the user's last visit are
 * marked "while away"; times in the exchange's zone, the browser's on hover. An object of its own (the
 * dashboard's `activity`): it gets its elements, the frame batch, a way to read when this user was last
 * here and the exchange's time zone.
 */
import { el } from './dom.js';
import { fmtEventTime } from './format.js';
import { deliveryTags } from './notifications.js';

/** @typedef {import('./dom.js').FrameBatch} FrameBatch */
/** @typedef {{kind: string, key: string, title: string, body: string, time: Date, past?: boolean, source?: any}} FeedItem */

export const MAX_FEED = 50;

export class ActivityFeed {
    /**
     * @param {object} parts
     * @param {Record<string, any>} parts.dom feed (the list), feedEmpty, away
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies DOM changes once per frame
     * @param {() => number | null} parts.lastSeen when this user last had the page live (epoch ms), or null
     * @param {() => string | null} parts.zone the exchange's time zone (null: the browser's)
     */
    constructor({ dom, frame, lastSeen, zone }) {
        this._dom = dom;
        this._frame = frame;
        this._lastSeen = lastSeen;
        this._zone = zone;
        /** @type {{key: string, kind: string, source: any, time: number, node: any, away: boolean}[]} newest first, at most MAX_FEED */
        this._items = [];
    }

    /** How many items are listed. */
    get size() {
        return this._items.length;
    }

    /**
     * Whether an item with this key is listed already.
     * @param {string} key
     */
    has(key) {
        return this._items.some((f) => f.key === key);
    }

    /**
     * Insert an item, newest first, without duplicates; false when already there (or older than all kept).
     * @param {FeedItem} item
     */
    add(item) {
        if (this.has(item.key)) return false;
        const node = el('li', 'feed-item feed-' + item.kind);
        const icon = el('span', 'feed-icon');
        icon.setAttribute('aria-hidden', 'true');
        const text = el('div', 'feed-text');
        text.append(el('div', 'feed-title', item.title), el('div', 'feed-body', item.body));
        const meta = el('div', 'feed-meta');
        const when = fmtEventTime(item.time, this._zone());
        const time = el('time', 'feed-time', when.text);
        time.dateTime = item.time.toISOString();
        time.title = when.title;
        meta.appendChild(time);
        // Missed messages (history, past triggers) newer than the last time this user was here
        const lastSeen = this._lastSeen();
        const away = !!item.past && lastSeen !== null && item.time.getTime() > lastSeen;
        if (item.past) meta.appendChild(el('span', away ? 'tag tag-away' : 'tag', away ? 'while away' : 'earlier'));
        node.append(icon, text, meta);

        const t = item.time.getTime();
        let index = this._items.findIndex((f) => f.time < t);
        if (index === -1) index = this._items.length;
        if (index >= MAX_FEED) return false; // older than everything kept
        this._items.splice(index, 0, { key: item.key, kind: item.kind, source: item.source, time: t, node: node, away: away });
        if (this._items.length > MAX_FEED) this._items.length = MAX_FEED;
        this._frame.set('feed', () => this._paint());
        return true;
    }

    /**
     * Take out the pattern detections whose message `keep` refuses (the pattern settings changed);
     * returns how many went.
     * @param {(msg: any) => boolean} keep
     */
    removePatterns(keep) {
        const before = this._items.length;
        this._items = this._items.filter((f) => f.kind !== 'pattern' || keep(f.source));
        const removed = before - this._items.length;
        if (removed) this._frame.set('feed', () => this._paint());
        return removed;
    }

    /**
     * Show where the item `key` went (its deliveries, as GET /api/alerts/events lists them); false when
     * it is not listed.
     * @param {string} key
     * @param {any[]} deliveries
     */
    setDeliveries(key, deliveries) {
        const item = this._items.find((f) => f.key === key);
        if (!item) return false;
        const node = item.node;
        this._frame.set(node, () => {
            const text = node.querySelector('.feed-text');
            const old = text.querySelector('.feed-deliveries');
            if (old) old.remove();
            if (deliveries.length) text.appendChild(deliveryTags(deliveries));
        });
        return true;
    }

    /** Make the list match the items: drop what was trimmed, put the rest in order. */
    _paint() {
        const list = this._dom.feed;
        const keep = new Set(this._items.map((f) => f.node));
        for (const child of Array.from(list.children)) {
            if (!keep.has(child)) child.remove();
        }
        let previous = null;
        for (const f of this._items) {
            const expected = previous ? previous.nextSibling : list.firstChild;
            if (expected !== f.node) list.insertBefore(f.node, expected);
            previous = f.node;
        }
        this._dom.feedEmpty.hidden = this._items.length > 0;
        const away = this._items.filter((f) => f.away).length;
        this._dom.away.hidden = away === 0;
        this._dom.away.textContent = away ? away + ' while you were away' : '';
    }
}
