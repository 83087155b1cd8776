// Types for tsc --checkJs only (never loaded by a page): what the client's parts (client/*.js) hand
// each other.

/** A message from the server: a JSON object with a `type` (docs/protocol.md). */
export interface Message {
    type: string;
    channel?: string;
    seq?: number;
    ticker?: string;
    [field: string]: unknown;
}

/** A `bar` message of the `bars` channel (docs/protocol.md): `time` is the bar's start; `closed` false
 *  while it forms (conflated: the newest wins), true once, when it is final. */
export interface BarMessage extends Message {
    type: 'bar';
    ticker: string;
    interval: '1m' | '5m' | '15m' | '1h' | '1d';
    time: string;
    open: number;
    high: number;
    low: number;
    close: number;
    volume: number;
    closed: boolean;
}

/** A value a filter compares a field with (docs/protocol.md, "Filters"). */
export type FilterValue = string | number | boolean | null;

/** The operators on one field: every one listed must hold. */
export interface FieldCondition {
    eq?: FilterValue;
    ne?: FilterValue;
    in?: FilterValue[];
    not_in?: FilterValue[];
    gt?: number | string;
    gte?: number | string;
    lt?: number | string;
    lte?: number | string;
    exists?: boolean;
}

/** A subscription filter: fields with their conditions, `and`/`or`/`not`, and `{ticker: 'watchlist'}`
 *  (the user's watchlist as it is now); every part listed must hold. `{}` is no filter. */
export interface Filter {
    and?: Filter[];
    or?: Filter[];
    not?: Filter;
    ticker?: FieldCondition | 'watchlist';
    [field: string]: FieldCondition | Filter | Filter[] | 'watchlist' | undefined;
}

/** subscribe()'s fourth argument. */
export interface SubscribeOptions {
    /** Only the messages it matches are sent; null, undefined or {}: all of them. */
    filter?: Filter | null;
}

/** The subscription an `error` refused (info.subscription of the error's handlers). */
export interface SubscriptionInfo {
    channel: string;
    ticker: string | null;
    interval: string | null;
    filter: Filter | null;
}

/** The messages of a stream lost to this client (a `gap` frame's from_seq..to_seq, both included). */
export interface GapRange {
    from: number;
    to: number;
}

/** What the handlers of a `gap` get as info (besides `replayed: false`). */
export interface GapInfo extends GapRange {
    /** The stream (the frame's `channel`), e.g. 'patterns', 'alerts:user:u1', 'bars:AAPL:1m'. */
    channel: string;
    /** True when its history is being reloaded (a subscribe without `since` was sent). */
    reloading: boolean;
    /** The subscriptions that own the stream. */
    subscriptions: SubscriptionInfo[];
}

/** What handlers of server messages get besides the message. */
export interface MessageInfo extends Partial<GapInfo> {
    /** True for a message replayed from a `history` reply. */
    replayed: boolean;
    /** On an `error` that refused a subscribe: which one (it is no longer pending). */
    subscription?: SubscriptionInfo;
    /** On a `service_status`: true for an ok that claims everything arrived (no stream has a gap open). */
    complete?: boolean;
    /** On a `service_status`: the streams that lost messages (the server's `gaps`, and any `gap` the
     *  client still remembers), sorted; empty when complete. */
    gaps?: string[];
}

/** The counters of getStats() that the parts add to (one object, given to each part). */
export interface ClientStats {
    messagesReceived: number;
    messagesSent: number;
    reconnects: number;
    errors: number;
    droppedMessages: number;
    duplicatesDropped: number;
    conflatedMessages: number;
    queueOverflows: number;
}

/** log(level, ...args): the client's logger, safe to call (a broken logger is ignored). */
export type Log = (level: 'debug' | 'info' | 'log' | 'warn' | 'error', ...args: unknown[]) => void;

/** Timers, time and randomness: the global ones, or fakes given as options in tests. */
export interface Clock {
    setTimeout: (fn: () => void, ms: number) => unknown;
    clearTimeout: (id: unknown) => void;
    setInterval: (fn: () => void, ms: number) => unknown;
    clearInterval: (id: unknown) => void;
    now: () => number;
    random: () => number;
}

/** Something to log to: console by default. */
export type Logger = Partial<Record<'debug' | 'info' | 'log' | 'warn' | 'error', (...args: unknown[]) => void>>;

/** new WebSocketClient(options): the specification's options, then the ones for tests and embedding. */
export interface ClientOptions {
    url?: string | null;
    userId?: string | null;
    /** A JWT, or a function returning one at each connection attempt; sent as ['bearer', token]. */
    token?: string | null | (() => string | null | undefined);
    reconnectDelay?: number;
    maxReconnectDelay?: number;
    reconnectBackoffMultiplier?: number;
    heartbeatInterval?: number;
    maxMessagesPerSecond?: number;
    batchUpdateDelay?: number;
    maxQueueSize?: number;
    maxCacheSize?: number;
    noReconnectCodes?: number[];
    WebSocket?: unknown;
    setTimeout?: (fn: () => void, ms: number) => unknown;
    clearTimeout?: (id: unknown) => void;
    setInterval?: (fn: () => void, ms: number) => unknown;
    clearInterval?: (id: unknown) => void;
    now?: () => number;
    random?: () => number;
    requestAnimationFrame?: (callback: (time: number) => void) => unknown;
    logger?: Logger | null;
    location?: { protocol?: string; host?: string } | null;
    /** The DomWriter behind updateElementIfChanged() (websocket-client.js); one of its own by default. */
    writer?: import('../dashboard/dom.js').DomWriter;
}
