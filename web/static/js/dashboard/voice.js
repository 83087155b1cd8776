// @ts-check
/**
 * Legend Realtime dashboard — voice alerts: the on/off choice (remembered in this browser, as sound is),
 * its button, and each new alert trigger (and pattern detection) spoken with the browser's speech
 * synthesis, for a trader who is not looking at the screen. An object of its own (the dashboard's
 * `voice`): it gets the speech synthesis (window.speechSynthesis, absent in some browsers), the button,
 * the DOM writer and the frame batch.
 */
import { KEYS, storage } from './storage.js';

/** @typedef {import('./dom.js').DomWriter} DomWriter */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */
/** @typedef {{speak: (utterance: any) => void, cancel?: () => void}} Speech */

export const MAX_SPOKEN = 200; // characters of a message read out (a long one is cut, not queued for minutes)
export const MAX_QUEUED = 3; // utterances waiting: a burst of triggers is not read out for minutes

export class VoiceAlerts {
    /**
     * @param {object} parts
     * @param {Speech | null | undefined} parts.speech window.speechSynthesis (none: the button is hidden)
     * @param {(text: string) => any} [parts.utterance] makes an utterance (SpeechSynthesisUtterance)
     * @param {any} parts.button the voice toggle button (its .btn-text says on or off)
     * @param {DomWriter} parts.writer writes text
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies attributes once per frame
     */
    constructor({ speech, utterance, button, writer, frame }) {
        this._speech = speech || null;
        this._utterance = utterance || ((text) => new SpeechSynthesisUtterance(text));
        this._button = button;
        this._writer = writer;
        this._frame = frame;
        this._queued = 0;
        /** Whether this browser can speak. */
        this.available = !!(this._speech && typeof this._speech.speak === 'function');
        /** Whether triggers are spoken (remembered in this browser). */
        this.enabled = this.available && storage.get(KEYS.voice) === 'on';
        /** @type {string[]} what was handed to the speech synthesis, newest last (at most 20: for tests and a11y checks) */
        this.spoken = [];
    }

    /**
     * Turn voice alerts on or off; on says so. Returns whether they are on.
     * @param {unknown} on
     */
    setEnabled(on) {
        this.enabled = this.available && !!on;
        storage.set(KEYS.voice, this.enabled ? 'on' : null);
        if (this.enabled) this.say('Voice alerts on');
        else if (this._speech && this._speech.cancel) this._speech.cancel();
        this.render();
        return this.enabled;
    }

    /**
     * Read `text` out when voice is on (cut to MAX_SPOKEN; dropped when MAX_QUEUED are waiting). Returns
     * whether it was handed to the speech synthesis.
     * @param {unknown} text
     */
    say(text) {
        if (!this.enabled || !this._speech) return false;
        let words = String(text || '').replace(/\s+/g, ' ').trim();
        if (!words || this._queued >= MAX_QUEUED) return false;
        if (words.length > MAX_SPOKEN) words = words.slice(0, MAX_SPOKEN - 1) + '…';
        let utterance;
        try {
            utterance = this._utterance(words);
        } catch (_) {
            return false;
        }
        this._queued++;
        const done = () => {
            this._queued = Math.max(0, this._queued - 1);
        };
        if (utterance && typeof utterance === 'object') {
            utterance.onend = done;
            utterance.onerror = done;
        }
        try {
            this._speech.speak(utterance);
        } catch (_) {
            done();
            return false;
        }
        this.spoken.push(words);
        if (this.spoken.length > 20) this.spoken.shift();
        return true;
    }

    /**
     * An alert triggered: its message spoken ("AAPL: price above 150" when it has none).
     * @param {any} msg an alert_trigger
     */
    alert(msg) {
        const ticker = String((msg && msg.ticker) || '');
        const kind = String((msg && (msg.alert_type || msg.kind)) || 'alert').replace(/_/g, ' ');
        return this.say((msg && msg.message) || ticker + ': ' + kind);
    }

    /**
     * A pattern detected: "VCP on AAPL, score 8.5".
     * @param {any} msg a pattern_alert
     */
    pattern(msg) {
        const score = Number(msg && msg.score);
        return this.say(String(msg.pattern_type || 'Pattern') + ' on ' + String(msg.ticker || '') + (Number.isFinite(score) ? ', score ' + score.toFixed(1) : ''));
    }

    /** Show the choice on the button (hidden where the browser cannot speak). */
    render() {
        const on = this.enabled;
        const button = this._button;
        if (!button) return;
        this._writer.write(button.querySelector('.btn-text'), on ? 'Voice on' : 'Voice off');
        this._frame.set('voice', () => {
            button.hidden = !this.available;
            button.setAttribute('aria-pressed', on ? 'true' : 'false');
            button.title = on ? 'Alerts are read out: click to stop' : 'Voice alerts are off: click to have alerts read out';
        });
    }
}
