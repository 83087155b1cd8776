/*
 * Legend Realtime — the dashboard's service worker: shows an alert trigger pushed by the server (Web Push,
 * docs/alerts.md "Where alerts go") as a system notification, and a click on it opens the ticker's chart.
 *
 * It is served as /static/sw.js, so its scope is /static/: it controls no page (it has no fetch handler
 * either). Push and notification events reach a registration whatever its scope, and an open dashboard
 * is found among the uncontrolled windows, so this is all push needs.
 *
 * A push message's data is the trigger's JSON (alert_id, ticker, alert_type, message, triggered_at, …).
 */
'use strict';

const DASHBOARD = '/dashboard';

/** "AAPL: breakout" from a trigger's alert_type ("price_above" reads "price above"). */
function titleOf(trigger) {
    const ticker = String(trigger.ticker || 'Alert');
    const kind = String(trigger.alert_type || trigger.kind || 'alert').replace(/_/g, ' ');
    return ticker + ': ' + kind;
}

/** The trigger in a push message, or a stand-in when the data is not the JSON the server sends. */
function triggerOf(data) {
    if (!data) return {};
    try {
        const value = data.json();
        return value && typeof value === 'object' ? value : { message: String(value) };
    } catch (_) {
        return { message: data.text() };
    }
}

/** Show `trigger` as a notification; the same alert_id again replaces the one shown (tag). */
function notify(trigger) {
    const options = {
        body: String(trigger.message || ''),
        icon: '/static/img/favicon.svg',
        timestamp: Date.parse(trigger.triggered_at || trigger.timestamp || '') || Date.now(),
        data: { ticker: trigger.ticker || null, alert_id: trigger.alert_id || null },
    };
    if (trigger.alert_id) options.tag = String(trigger.alert_id);
    return self.registration.showNotification(titleOf(trigger), options);
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
    event.waitUntil(notify(triggerOf(event.data)));
});

/** Focus an open dashboard and have it open the chart, or open a dashboard at that chart. */
async function openChart(ticker) {
    const url = new URL(DASHBOARD, self.location.origin);
    if (ticker) url.searchParams.set('chart', ticker);
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = windows.find((client) => new URL(client.url).pathname === DASHBOARD);
    if (open) {
        if (ticker) open.postMessage({ type: 'legend.open-chart', ticker: ticker });
        return open.focus();
    }
    return self.clients.openWindow(url.href);
}

self.addEventListener('notificationclick', (event) => {
    const data = event.notification.data || {};
    event.notification.close();
    event.waitUntil(openChart(typeof data.ticker === 'string' ? data.ticker : null));
});
