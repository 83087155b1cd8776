// Types for tsc --checkJs only (never loaded by a page). StreamClient's methods are written in one
// module per role and installed on its prototype (client.js); `Client` is the class with all of them,
// the type of `this` inside each role module (`@satisfies {ThisType<Client>}`).
import type { StreamClientBase } from './client.js';
import type { connection } from './connection.js';
import type { queue } from './queue.js';
import type { subscriptions } from './subscriptions.js';

type Connection = typeof connection;
type Subscriptions = typeof subscriptions;
type Queue = typeof queue;

export interface Client extends StreamClientBase, Connection, Subscriptions, Queue {}

/** A message from the server: a JSON object with a `type` (docs/protocol.md). */
export interface Message {
    type: string;
    channel?: string;
    seq?: number;
    ticker?: string;
    [field: string]: unknown;
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
