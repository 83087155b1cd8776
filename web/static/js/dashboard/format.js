// @ts-check
/**
 * Legend Realtime dashboard — reading what users type and formatting what the page shows: ticker and
 * user id rules, numbers, prices, times, and exchange times with the zone named ("opens 9:30 AM ET").
 * Pure functions, no DOM.
 */

export const TICKER_RE = /^\^?[A-Z][A-Z0-9]*(?:[.-][A-Z0-9]+)*$/; // the server's rule (legend/domain/symbols.py)
export const MAX_TICKER_LENGTH = 12;
export const USER_ID_RE = /^[A-Za-z0-9_.@|-]{1,64}$/;

// The time zone of each exchange calendar (market.calendar; the market_status message's `exchange`).
// An exchange not listed here is shown in the browser's own time, with its zone named.
export const EXCHANGE_ZONES = {
    XNYS: 'America/New_York', XNAS: 'America/New_York', XASE: 'America/New_York', ARCX: 'America/New_York',
    BATS: 'America/New_York', IEPA: 'America/New_York', XCBF: 'America/Chicago', CMES: 'America/Chicago',
    XTSE: 'America/Toronto', XMEX: 'America/Mexico_City', BVMF: 'America/Sao_Paulo',
    XLON: 'Europe/London', XDUB: 'Europe/Dublin', XPAR: 'Europe/Paris', XAMS: 'Europe/Amsterdam',
    XBRU: 'Europe/Brussels', XETR: 'Europe/Berlin', XFRA: 'Europe/Berlin', XSWX: 'Europe/Zurich',
    XMIL: 'Europe/Rome', XMAD: 'Europe/Madrid', XSTO: 'Europe/Stockholm', XOSL: 'Europe/Oslo',
    XCSE: 'Europe/Copenhagen', XHEL: 'Europe/Helsinki', XWBO: 'Europe/Vienna', XLIS: 'Europe/Lisbon',
    XJSE: 'Africa/Johannesburg', XTAE: 'Asia/Jerusalem', XBOM: 'Asia/Kolkata', XNSE: 'Asia/Kolkata',
    XSHG: 'Asia/Shanghai', XSHE: 'Asia/Shanghai', XHKG: 'Asia/Hong_Kong', XTAI: 'Asia/Taipei',
    XKRX: 'Asia/Seoul', XTKS: 'Asia/Tokyo', XSES: 'Asia/Singapore', XKLS: 'Asia/Kuala_Lumpur',
    XIDX: 'Asia/Jakarta', XBKK: 'Asia/Bangkok', XPHS: 'Asia/Manila', XASX: 'Australia/Sydney',
    XNZE: 'Pacific/Auckland',
};
export const DEFAULT_EXCHANGE = 'XNYS'; // market.calendar's default, until the first market_status says

/** An upper-cased ticker, or null when it is not a valid symbol. */
export function parseTicker(raw) {
    const typed = String(raw === null || raw === undefined ? '' : raw).trim();
    if (!/^[\x20-\x7e]*$/.test(typed)) return null; // ASCII before any case change ('ß' is not 'SS')
    const t = typed.toUpperCase();
    return t.length > 0 && t.length <= MAX_TICKER_LENGTH && TICKER_RE.test(t) ? t : null;
}

export function num(value) {
    const n = typeof value === 'number' ? value : Number(value);
    return Number.isFinite(n) ? n : null;
}

export const formats = new Map();
export function numberFormat(options) {
    const key = JSON.stringify(options);
    let f = formats.get(key);
    if (!f) {
        f = new Intl.NumberFormat(undefined, options);
        formats.set(key, f);
    }
    return f;
}

export function fmtPrice(value) {
    const v = num(value);
    if (v === null) return '—';
    const digits = Math.abs(v) >= 1 || v === 0 ? 2 : 4;
    return numberFormat({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
}

export function signed(v, text) {
    return (v > 0 ? '+' : v < 0 ? '−' : '') + text;
}

export function fmtChange(value) {
    const v = num(value);
    if (v === null) return '—';
    const digits = v !== 0 && Math.abs(v) < 0.01 ? 4 : 2;
    return signed(v, numberFormat({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(Math.abs(v)));
}

export function fmtPercent(value) {
    const v = num(value);
    if (v === null) return '—';
    return signed(v, numberFormat({ minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(Math.abs(v)) + '%');
}

export function fmtVolume(value) {
    const v = num(value);
    return v === null ? '—' : numberFormat({ notation: 'compact', maximumFractionDigits: 1 }).format(v);
}

export function fmtMoney(value) {
    return '$' + fmtPrice(value);
}

export function fmtThreshold(kind, value) {
    if (String(kind).startsWith('change_percent')) return fmtPercent(value).replace(/^\+/, '');
    if (kind === 'volume_above') return fmtVolume(value);
    return fmtMoney(value);
}

export function parseTime(value) {
    if (!value) return null;
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? null : d;
}

export const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
export const fullFormat = new Intl.DateTimeFormat(undefined, {
    weekday: 'long', year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short',
});

export function fmtClock(date) {
    return date ? timeFormat.format(date) : '';
}

/** The IANA time zone of an exchange calendar code, or null when it is not known here. */
export function exchangeZone(exchange) {
    return Object.prototype.hasOwnProperty.call(EXCHANGE_ZONES, exchange) ? EXCHANGE_ZONES[exchange] : null;
}

export const zoneFormats = new Map();
/** A cached Intl.DateTimeFormat in `zone` (null: the browser's own zone). */
export function zoneFormat(zone, options) {
    const key = (zone || '') + JSON.stringify(options);
    let f = zoneFormats.get(key);
    if (!f) {
        f = new Intl.DateTimeFormat(options.locale, Object.assign({}, options, { locale: undefined, timeZone: zone || undefined }));
        zoneFormats.set(key, f);
    }
    return f;
}

export function zonePart(zone, date, style) {
    const part = zoneFormat(zone, { timeZoneName: style }).formatToParts(date).find((p) => p.type === 'timeZoneName');
    return part ? part.value : '';
}

/** The zone's short name at `date`: "ET" for New York (generic), else "GMT", "GMT+9", "CET"… */
export function zoneName(zone, date) {
    const generic = zonePart(zone, date, 'shortGeneric');
    if (generic && generic.length <= 4 && !/^GMT|^UTC/.test(generic)) return generic;
    return zonePart(zone, date, 'short');
}

/** Calendar day of `date` in `zone` (YYYY-MM-DD). */
export function zoneDay(zone, date) {
    const p = {};
    for (const part of zoneFormat(zone, { year: 'numeric', month: '2-digit', day: '2-digit', locale: 'en-US' }).formatToParts(date)) p[part.type] = part.value;
    return p.year + '-' + p.month + '-' + p.day;
}

/**
 * An exchange time for the market badge, with the zone named: "9:30 AM ET" on the exchange's
 * current day, "Tue 9:30 AM ET" within a week, "Nov 27, 9:30 AM ET" further away.
 */
export function fmtMarketTime(date, zone, now) {
    if (!date) return '';
    const at = now || new Date();
    const time = zoneFormat(zone, { hour: 'numeric', minute: '2-digit' }).format(date) + ' ' + zoneName(zone, date);
    if (zoneDay(zone, date) === zoneDay(zone, at)) return time;
    if (Math.abs(date.getTime() - at.getTime()) <= 6 * 86400000) {
        return zoneFormat(zone, { weekday: 'short' }).format(date) + ' ' + time;
    }
    return zoneFormat(zone, { month: 'short', day: 'numeric' }).format(date) + ', ' + time;
}

/** The long form for a tooltip: "Tuesday, Dec 2, 9:30 AM EST". */
export function fmtMarketTimeLong(date, zone) {
    return zoneFormat(zone, { weekday: 'long', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).format(date);
}

/**
 * When something happened, for the Activity list and the toasts: in the exchange's zone with the zone
 * named, like the market badge and the chart ("10:31:05 AM ET"; "Tue 10:31 AM ET" on another exchange
 * day), and for the tooltip both times, each labelled ("Exchange time: …\nYour time: …"). `zone` null
 * (an exchange not known here): the browser's own time, its zone named.
 * @param {Date} date
 * @param {string | null} zone
 * @param {Date} [now]
 * @returns {{text: string, title: string}}
 */
export function fmtEventTime(date, zone, now) {
    const at = now || new Date();
    const text = zoneDay(zone, date) === zoneDay(zone, at)
        ? zoneFormat(zone, { hour: 'numeric', minute: '2-digit', second: '2-digit' }).format(date) + ' ' + zoneName(zone, date)
        : fmtMarketTime(date, zone, at);
    const long = { weekday: 'short', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit', timeZoneName: 'short' };
    const yours = 'Your time: ' + zoneFormat(null, long).format(date);
    return { text: text, title: zone ? 'Exchange time: ' + zoneFormat(zone, long).format(date) + '\n' + yours : yours };
}
