// @ts-check
/**
 * Legend Realtime client — the protocol's constants and the client's defaults: which server messages are
 * control messages, which close codes end reconnecting, and how options are read.
 * Every name here is also a static property of WebSocketClient (WebSocketClient.CONTROL_TYPES, ...).
 */

/** The intervals of the `bars` channel (docs/protocol.md), shortest first. */
export const BAR_INTERVALS = Object.freeze(['1m', '5m', '15m', '1h', '1d']);

/** Server message types handled at once: never queued, throttled or dropped. */
export const CONTROL_TYPES = new Set(['connection', 'subscription', 'history', 'pong', 'error', 'service_status', 'gap']);

/** Close codes after which reconnecting with the same credentials cannot help. */
export const NO_RECONNECT_CODES = Object.freeze([4401, 4403]);

/** Close code the client uses when it gives up on a silent connection. */
export const HEARTBEAT_TIMEOUT_CODE = 4000;

/** WebSocket.OPEN, for sockets given as options that may not define it. */
export const SOCKET_OPEN = 1;

/** The options of the specification (docs/protocol.md, "The browser client") and their defaults. */
export const DEFAULTS = Object.freeze({
    url: null,
    userId: null,
    token: null,
    reconnectDelay: 1000,
    maxReconnectDelay: 30000,
    reconnectBackoffMultiplier: 1.5,
    heartbeatInterval: 30000,
    maxMessagesPerSecond: 10,
    batchUpdateDelay: 100,
    maxQueueSize: 1000,
    maxCacheSize: 5000,
});

/**
 * `value` as a number when it is above zero, else `fallback`.
 * @param {unknown} value
 * @param {number} fallback
 * @returns {number}
 */
export function positive(value, fallback) {
    const n = Number(value);
    return value !== null && value !== undefined && n > 0 ? n : fallback;
}

/**
 * `value` as a number when it is zero or more, else `fallback`.
 * @param {unknown} value
 * @param {number} fallback
 * @returns {number}
 */
export function nonNegative(value, fallback) {
    const n = Number(value);
    return value !== null && value !== undefined && n >= 0 ? n : fallback;
}
