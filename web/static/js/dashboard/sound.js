// @ts-check
/**
 * Legend Realtime dashboard — sound alerts: the on/off choice (remembered in this browser), its button,
 * and the beep of an alert. An object of its own (the dashboard's `sound`): it gets the Beeper, the
 * button, the DOM writer and the frame batch.
 */
import { KEYS, storage } from './storage.js';

/** @typedef {import('./alerts.js').Beeper} Beeper */
/** @typedef {import('./dom.js').DomWriter} DomWriter */
/** @typedef {import('./dom.js').FrameBatch} FrameBatch */

export class SoundAlerts {
    /**
     * @param {object} parts
     * @param {Pick<Beeper, 'unlock' | 'play'>} parts.beeper makes the sounds
     * @param {any} parts.button the sound toggle button (its .btn-text says on or off)
     * @param {DomWriter} parts.writer writes text
     * @param {Pick<FrameBatch, 'set'>} parts.frame applies attributes once per frame
     */
    constructor({ beeper, button, writer, frame }) {
        this._beeper = beeper;
        this._button = button;
        this._writer = writer;
        this._frame = frame;
        /** Whether alerts beep (remembered in this browser). */
        this.enabled = storage.get(KEYS.sound) === 'on';
    }

    /**
     * Turn sound alerts on or off; on plays a soft confirmation. Returns whether they are on.
     * @param {unknown} on
     */
    setEnabled(on) {
        this.enabled = !!on;
        storage.set(KEYS.sound, this.enabled ? 'on' : null);
        if (this.enabled && this._beeper.unlock()) this._beeper.play('confirm');
        this.render();
        return this.enabled;
    }

    /** A user gesture: a remembered "sound on" needs one before the browser lets audio start. */
    unlock() {
        if (this.enabled) this._beeper.unlock();
    }

    /** An alert triggered: beep when sound is on. */
    alert() {
        if (this.enabled) this._beeper.play('alert');
    }

    /** Show the choice on the button. */
    render() {
        const on = this.enabled;
        const button = this._button;
        this._writer.write(button.querySelector('.btn-text'), on ? 'Sound on' : 'Sound off');
        this._frame.set('sound', () => {
            button.setAttribute('aria-pressed', on ? 'true' : 'false');
            button.title = on ? 'Sound alerts are on: click to mute' : 'Sound alerts are off: click to turn them on';
        });
    }
}
