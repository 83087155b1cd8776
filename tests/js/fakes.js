// @ts-check
/**
 * Test doubles for the WebSocket client: a fake socket, a fake clock with timers, a fake
 * requestAnimationFrame and a recording logger; the server's messages (price, pattern, ack, trigger) and the
 * steps tests share (connectOpen, alertsSetup). Not a test file itself (node --test skips it).
 */

import { WebSocketClient } from '../../web/static/js/websocket-client.js';

/** A controllable clock: setTimeout/setInterval/clear* and tick(ms), which runs due timers in order. */
class FakeClock {
    constructor(start = Date.UTC(2025, 10, 18, 10, 30, 0)) {
        this.now = start;
        this._timers = new Map();
        this._nextId = 1;
        this.setTimeout = (fn, ms) => this._add(fn, ms, null);
        this.setInterval = (fn, ms) => this._add(fn, ms, Math.max(1, Number(ms) || 0));
        this.clearTimeout = (id) => this._timers.delete(id);
        this.clearInterval = (id) => this._timers.delete(id);
        this.dateNow = () => this.now;
    }

    _add(fn, ms, interval) {
        const id = this._nextId++;
        this._timers.set(id, { fn, at: this.now + Math.max(0, Number(ms) || 0), interval, id });
        return id;
    }

    /** Advance time by `ms`, running every timer that falls due, earliest first. */
    tick(ms = 0) {
        const end = this.now + ms;
        for (;;) {
            let next = null;
            for (const timer of this._timers.values()) {
                if (timer.at <= end && (next === null || timer.at < next.at || (timer.at === next.at && timer.id < next.id))) {
                    next = timer;
                }
            }
            if (next === null) break;
            this.now = Math.max(this.now, next.at);
            if (next.interval !== null) next.at += next.interval;
            else this._timers.delete(next.id);
            next.fn();
        }
        this.now = end;
    }

    /** Number of timers waiting. */
    get pending() {
        return this._timers.size;
    }
}

/** Make a FakeWebSocket class with its own `instances` list. */
function makeFakeWebSocket() {
    class FakeWebSocket {
        constructor(url, protocols) {
            this.url = url;
            this.protocols = protocols;
            this.readyState = FakeWebSocket.CONNECTING;
            this.sent = [];
            this.closeCalls = [];
            this.onopen = null;
            this.onmessage = null;
            this.onerror = null;
            this.onclose = null;
            FakeWebSocket.instances.push(this);
        }

        /** The server accepts the connection. */
        open() {
            this.readyState = FakeWebSocket.OPEN;
            if (this.onopen) this.onopen({ type: 'open' });
        }

        /** The server sends a message (an object is JSON-encoded; a string goes as is). */
        serverSend(obj) {
            if (this.onmessage) this.onmessage({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
        }

        /** The connection ends, as seen from the client. */
        drop(code = 1006, reason = '') {
            this.readyState = FakeWebSocket.CLOSED;
            if (this.onerror && code === 1006) this.onerror({ type: 'error' });
            if (this.onclose) this.onclose({ code, reason, wasClean: code === 1000 });
        }

        send(data) {
            if (this.readyState !== FakeWebSocket.OPEN) throw new Error('InvalidStateError: not open');
            this.sent.push(data);
        }

        /** Like a real socket whose peer is gone: no close event arrives by itself. */
        close(code, reason) {
            this.closeCalls.push({ code, reason });
            this.readyState = FakeWebSocket.CLOSING;
        }

        /** The frames sent so far, decoded. */
        get frames() {
            return this.sent.map((s) => JSON.parse(s));
        }
    }
    FakeWebSocket.CONNECTING = 0;
    FakeWebSocket.OPEN = 1;
    FakeWebSocket.CLOSING = 2;
    FakeWebSocket.CLOSED = 3;
    FakeWebSocket.instances = [];
    Object.defineProperty(FakeWebSocket, 'last', { get: () => FakeWebSocket.instances[FakeWebSocket.instances.length - 1] });
    return FakeWebSocket;
}

/** A fake requestAnimationFrame: callbacks wait in `frames` until runFrame(). */
function makeFakeRaf(clock) {
    const raf = (cb) => {
        raf.frames.push(cb);
        raf.requested++;
        return raf.requested;
    };
    raf.frames = [];
    raf.requested = 0;
    raf.runFrame = () => {
        const frames = raf.frames;
        raf.frames = [];
        for (const cb of frames) cb(clock ? clock.now : 0);
        return frames.length;
    };
    return raf;
}

/** A logger that records instead of printing. */
function makeLogger() {
    const records = [];
    const logger = /** @type {any} */ ({ records });
    for (const level of ['debug', 'info', 'log', 'warn', 'error']) {
        logger[level] = (...args) => records.push({ level, args });
    }
    return logger;
}

/** A stand-in DOM element: only textContent, with a count of writes. */
function makeElement(text = '') {
    let value = text;
    /** @type {{writes: number, textContent: string, isConnected?: boolean, contains?: (node: any) => boolean}} */
    const el = /** @type {any} */ ({ writes: 0 });
    Object.defineProperty(el, 'textContent', {
        get: () => value,
        set: (v) => {
            value = v;
            el.writes++;
        },
    });
    return el;
}

/** A client wired to fakes. Returns {client, clock, WS, raf, logger}. */
function setup(options = {}) {
    const clock = new FakeClock();
    const WS = makeFakeWebSocket();
    const raf = makeFakeRaf(clock);
    const logger = makeLogger();
    const client = new WebSocketClient({
        url: 'ws://test.local/api/ws',
        WebSocket: WS,
        setTimeout: clock.setTimeout,
        clearTimeout: clock.clearTimeout,
        setInterval: clock.setInterval,
        clearInterval: clock.clearInterval,
        now: clock.dateNow,
        random: () => 0.5,
        requestAnimationFrame: raf,
        logger,
        ...options,
    });
    return { client, clock, WS, raf, logger };
}

/** Record every event of `types` on `client` as [type, payload] pairs. */
function recordEvents(client, types) {
    const events = [];
    for (const type of types) client.on(type, (payload, info) => events.push({ type, payload, info }));
    return events;
}

// ───────────────────────────── server messages and common steps ─────────────────────────────

let nextSeq = 1;
function price(ticker, value, seq, extra = {}) {
    return {
        type: 'price_update',
        ticker,
        price: value,
        change: 0,
        change_percent: 0,
        volume: 1000,
        high: value,
        low: value,
        open: value,
        timestamp: '2025-11-18T10:30:00Z',
        channel: 'ticker:' + ticker,
        seq: seq === undefined ? nextSeq++ : seq,
        ...extra,
    };
}

function pattern(ticker, seq) {
    return {
        type: 'pattern_alert',
        ticker,
        pattern_type: 'VCP',
        score: 8.5,
        entry_price: 1,
        stop_price: 1,
        target_price: 2,
        risk_reward_ratio: 2,
        message: 'x',
        timestamp: '2025-11-18T10:30:00Z',
        channel: 'patterns',
        seq,
    };
}

function ack(channel, streams, ticker) {
    const msg = { type: 'subscription', action: 'subscribed', channel, streams, timestamp: '2025-11-18T10:30:00Z' };
    if (ticker) msg.ticker = ticker;
    return msg;
}

/** connect() and let the server accept. */
function connectOpen(env) {
    env.client.connect();
    const ws = env.WS.last;
    ws.open();
    return ws;
}

/** The subscribe frames a fake socket sent. */
const subscribeFrames = (ws) => ws.frames.filter((f) => f.type === 'subscribe');

function trigger(seq, stream = 'alerts:user:u1') {
    return {
        type: 'alert_trigger',
        ticker: 'AAPL',
        alert_type: 'breakout',
        alert_id: 'a' + seq,
        trigger_price: 1,
        current_price: 2,
        message: 'r:' + seq,
        timestamp: '2025-11-18T10:30:00Z',
        channel: stream,
        seq,
    };
}

/** A client subscribed to 'alerts' (two streams), acknowledged, with empty histories. */
function alertsSetup(options = {}) {
    const env = setup({ userId: 'u1', ...options });
    const got = [];
    env.client.on('alert_trigger', (m, info) => got.push((info.replayed ? 'replay ' : '') + m.message));
    env.client.subscribe('alerts');
    const ws = connectOpen(env);
    ws.serverSend(ack('alerts', ['alerts', 'alerts:user:u1']));
    ws.serverSend({ type: 'history', channel: 'alerts', messages: [], seq: 0, timestamp: 't' });
    ws.serverSend({ type: 'history', channel: 'alerts:user:u1', messages: [], seq: 0, timestamp: 't' });
    return { env, got, ws };
}

/** A stand-in element that contains other elements (for forgetElements). */
function makeContainer(children) {
    const root = makeElement();
    root.contains = (node) => node === root || children.includes(node);
    return root;
}

// ───────────────────────────── the chart library ─────────────────────────────

/**
 * A stand-in for LightweightCharts that records what the view asks of it: series (with their pane),
 * panes, the time scale's visible logical range and its subscribers (`scrollTo(from, to)` plays the
 * user scrolling), `calls` ('fit', 'remove', ['createChart', container, options]).
 */
function makeChartLibrary() {
    const calls = [];
    class Series {
        constructor(type, options, pane) {
            this.type = type;
            this.options = options;
            this.pane = pane || 0;
            this.points = [];
            this.priceLines = [];
        }
        setData(data) {
            this.points = data.slice();
        }
        update(point) {
            const last = this.points[this.points.length - 1];
            if (last && point.time < last.time) throw new Error('Cannot update oldest data');
            if (last && point.time === last.time) this.points[this.points.length - 1] = point;
            else this.points.push(point);
        }
        applyOptions(options) {
            Object.assign(this.options, options);
        }
        createPriceLine(options) {
            this.priceLines.push(options);
        }
        data() {
            return this.points;
        }
        seriesType() {
            return this.type;
        }
    }
    const timeScale = {
        /** @type {{from: number, to: number} | null} */
        range: null,
        /** @type {((range: any) => void)[]} */
        handlers: [],
        fitContent() {
            calls.push('fit');
        },
        getVisibleLogicalRange() {
            return this.range;
        },
        setVisibleLogicalRange(range) {
            this.range = { from: range.from, to: range.to };
            for (const fn of this.handlers) fn(this.range);
        },
        subscribeVisibleLogicalRangeChange(fn) {
            this.handlers.push(fn);
        },
        /** The user scrolls the chart. */
        scrollTo(from, to) {
            this.setVisibleLogicalRange({ from, to });
        },
    };
    const chart = {
        /** @type {Series[]} */
        series: [],
        options: [],
        /** @type {{stretch: number, setStretchFactor: (f: number) => void}[]} */
        paneList: [],
        addSeries(definition, options, pane) {
            const s = new Series(definition, options, pane);
            this.series.push(s);
            return s;
        },
        removeSeries(s) {
            this.series.splice(this.series.indexOf(s), 1);
        },
        panes() {
            const count = Math.max(0, ...this.series.map((s) => s.pane + 1));
            while (this.paneList.length < count) {
                const pane = { stretch: 1, setStretchFactor: (f) => (pane.stretch = f) };
                this.paneList.push(pane);
            }
            this.paneList.length = count;
            return this.paneList.slice();
        },
        applyOptions(options) {
            this.options.push(options);
        },
        timeScale: () => timeScale,
        remove: () => calls.push('remove'),
    };
    return {
        calls,
        chart,
        timeScale,
        AreaSeries: 'Area',
        CandlestickSeries: 'Candlestick',
        HistogramSeries: 'Histogram',
        createChart(container, options) {
            calls.push(['createChart', container, options]);
            return chart;
        },
        /** The markers plugin: `attached` lists those not detached, with the series they mark. */
        attached: [],
        createSeriesMarkers(series, markers) {
            const lib = this;
            const plugin = {
                series,
                list: (markers || []).slice(),
                setMarkers(list) {
                    this.list = list.slice();
                },
                markers() {
                    return this.list;
                },
                detach() {
                    lib.attached.splice(lib.attached.indexOf(plugin), 1);
                },
            };
            lib.attached.push(plugin);
            return plugin;
        },
    };
}

export {
    FakeClock,
    makeFakeWebSocket,
    makeFakeRaf,
    makeLogger,
    makeElement,
    setup,
    recordEvents,
    price,
    pattern,
    ack,
    trigger,
    connectOpen,
    subscribeFrames,
    alertsSetup,
    makeContainer,
    makeChartLibrary,
};
