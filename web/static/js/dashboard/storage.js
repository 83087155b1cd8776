// @ts-check
/**
 * Legend Realtime dashboard — what the page keeps in this browser (localStorage): the user id, the
 * token, sound, voice and chart preferences, a watchlist copy, the pattern settings, when the user was
 * last here.
 */

export const KEYS = {
    userId: 'legend.userId',
    token: 'legend.token',
    sound: 'legend.sound',
    voice: 'legend.voice',
    chartKind: 'legend.chartKind',
    chartInterval: 'legend.chartInterval',
    watchlist: (user) => 'legend.watchlist.' + user,
    lastSeen: (user) => 'legend.lastSeen.' + user,
    patternSettings: (user) => 'legend.patternSettings.' + user,
};

export const storage = {
    get(key) {
        try {
            return window.localStorage.getItem(key);
        } catch (_) {
            return null; // storage disabled (privacy mode): the page still works
        }
    },
    set(key, value) {
        try {
            if (value === null || value === undefined) window.localStorage.removeItem(key);
            else window.localStorage.setItem(key, value);
        } catch (_) {
            /* quota or privacy mode */
        }
    },
};
