// @ts-check
/**
 * Legend Realtime — dashboard: a thin view layer on top of WebSocketClient (websocket-client.js).
 *
 * The page loads it as a module (<script type="module" src="/static/js/realtime-dashboard.js">); it starts
 * by itself and is reachable as `window.realtimeDashboard` (the class as `window.RealtimeDashboard`, the
 * chart as `window.PriceChart`):
 *
 *   realtimeDashboard.subscribeTicker('TSLA');     // show a live row for TSLA (not saved to the watchlist)
 *   realtimeDashboard.unsubscribeTicker('TSLA');
 *   realtimeDashboard.toggleStats();               // show/hide the panel with ws.getStats()
 *   realtimeDashboard.ws.getStats();               // the WebSocketClient itself
 *   realtimeDashboard.addToWatchlist('AMD');       // what the "Add" form does (REST, then subscribe)
 *   realtimeDashboard.setSoundEnabled(true);       // what the sound button does
 *   realtimeDashboard.openChart('AAPL');           // what clicking a ticker does (price chart, then live)
 *   realtimeDashboard.createAlertRule({ticker: 'AAPL', kind: 'crossing', threshold: '150', session: 'any'});
 *   realtimeDashboard.previewAlertRule();          // what the rule form's Preview does (fires marked on the chart)
 *   realtimeDashboard.signIn(token);               // what the sign-in form does (JWT mode)
 *   realtimeDashboard.destroy();                   // handlers, timers and listeners removed; socket closed
 *
 * Identity: the page first asks GET /api/auth/config which mode the server is in.
 * - dev: the user id comes from `?user_id=` (remembered in localStorage), else localStorage, else 'demo';
 *   the socket sends it as `?user_id=`, REST calls as `X-User-Id`.
 * - jwt: the token in localStorage['legend.token'] (put there by the sign-in form, or by a login service
 *   that sends the user back to /dashboard#token=<JWT>) is checked with GET /api/auth/me; the socket sends
 *   it as the ['bearer', token] subprotocols, REST as `Authorization: Bearer`. Without a token the page
 *   shows the sign-in panel instead of connecting; a close 4401 (the token expired or was refused) or a
 *   REST 401 brings the panel back with the reason.
 *
 * Times: market open/close times are shown in the exchange's time zone with its name ("opens 9:30 AM
 * ET"), the local time on hover; charts read in exchange time too (price-chart.js).
 *
 * The watchlist lives on the server (GET/POST/DELETE /api/watchlist). When that API answers 404 (not
 * deployed) the list is kept in localStorage instead, and a note says so.
 *
 * Rendering: text goes through the page's DomWriter (dashboard/dom.js; change-detected, applied once per
 * frame; ws.getStats() counts its writes); classes, attributes and charts go through one keyed
 * requestAnimationFrame batch (FrameBatch). Everything the page keeps is bounded: chart points per
 * ticker, toasts, activity items.
 *
 * The code is split by role under dashboard/ (dashboard.js lists the modules).
 */
import { RealtimeDashboard } from './dashboard/dashboard.js';
import { PriceChart } from './price-chart.js';

export { RealtimeDashboard };

window.RealtimeDashboard = RealtimeDashboard;
window.PriceChart = PriceChart;

function boot() {
    if (window.realtimeDashboard) return;
    window.realtimeDashboard = new RealtimeDashboard().start();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot, { once: true });
else boot();
