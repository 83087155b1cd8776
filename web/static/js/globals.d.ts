// Types for tsc --checkJs only: the globals the page's modules define or use.
import type { RealtimeDashboard } from './dashboard/dashboard.js';
import type { PriceChart } from './price-chart.js';
import type { WebSocketClient } from './websocket-client.js';

declare global {
    interface Window {
        WebSocketClient: typeof WebSocketClient;
        RealtimeDashboard: typeof RealtimeDashboard;
        realtimeDashboard: RealtimeDashboard;
        PriceChart: typeof PriceChart;
        /** The vendored Lightweight Charts™ (lightweight-charts.standalone.production.js), once loaded. */
        LightweightCharts?: any;
        webkitAudioContext?: typeof AudioContext;
    }
    var WebSocketClient: typeof import('./websocket-client.js').WebSocketClient;
    var LightweightCharts: any;
}
