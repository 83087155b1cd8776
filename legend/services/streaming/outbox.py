"""The outbox of one connection: what waits to be written to its socket, in what order, within what budget.

Most messages never wait: when a connection has nothing pending and budget left, ``offer`` says so and the
caller writes the shared frame straight to the socket. Only what has to wait is queued here:

- control replies, first (never throttled or dropped);
- conflated messages (prices), newest value per (stream, key) when the per-connection budget allows; the
  key is the message's ticker or symbol, so one stream carrying several symbols keeps the newest of each;
- must-deliver messages, in order (never dropped: past ``capacity`` the connection is declared overflowed
  and must be closed). They are not held back by the budget but use it up.

A final message of a conflated stream (``Envelope.final``: a closed bar) is must-deliver. What of its stream
waits to be conflated is older: it goes into the must-deliver line first, so the stream's messages still
reach the client in ``seq`` order (a client drops a message at or below the last seq it saw), and newer
conflated messages of that stream wait behind it.

Whatever waits is also bounded in bytes (``max_bytes``, counted as the characters of the JSON texts, as if
no other connection shared them): past it the connection is overflowed too, whatever the kind of message,
so that what a client that stops reading can cost is bounded even for large messages or many conflated
keys. A single frame larger than ``max_bytes`` still goes out when nothing else waits.

Prices have a guaranteed share of the budget (``price_share`` sends a second): once the budget is spent
(a flood of must-deliver messages spends it), pending prices still go out at that rate, ahead of queued
must-deliver messages, so a burst of alerts slows prices down but never freezes them.

While a subscription waits for its history (a round trip to Redis), live messages of that stream are
*held*: they are released after the history reply, minus those the history already contains, so a client
never sees a live message before, or twice beside, the history of its stream.

Every container is made when first needed and dropped when emptied: an idle connection costs little more
than its two budget rings.
"""

from __future__ import annotations

import enum
import sys
from collections import deque

from legend.domain.channels import Delivery
from legend.domain.envelope import Envelope
from legend.domain.throttle import SlidingWindow

Slot = str | tuple[str, str]  # what conflates: the stream, or (stream, key)


def slot_of(envelope: Envelope) -> Slot:
    return (envelope.stream, envelope.key) if envelope.key else envelope.stream


def _stream_of(slot: Slot) -> str:
    return slot if isinstance(slot, str) else slot[0]


class Pushed(enum.IntEnum):
    """What ``Outbox.offer`` / ``push`` did; falsy only for OVERFLOW."""

    OVERFLOW = 0  # past capacity: the connection must be closed
    QUEUED = 1  # something new to write: make sure the writer runs
    MERGED = 2  # replaced a pending price (conflated): the writer need not wake
    DEFERRED = 3  # held while history is read, or already covered by it: nothing to write now
    WRITE = 4  # (offer only) nothing pending and budget left, now taken: write it (or ``refund``)


# The members read on the hot path, as module globals: an enum member read through its class costs
# about 80 ns in Python 3.11 (EnumType.__getattr__ keeps the read from being specialised), a global 9.
OVERFLOW, QUEUED, MERGED, DEFERRED, WRITE = (
    Pushed.OVERFLOW,
    Pushed.QUEUED,
    Pushed.MERGED,
    Pushed.DEFERRED,
    Pushed.WRITE,
)
CONFLATE = Delivery.CONFLATE


class Outbox:
    """Pending frames of one connection. Pure state: the caller supplies monotonic time."""

    __slots__ = (
        "_budget",
        "_bytes",
        "_control",
        "_finals",
        "_floor",
        "_held",
        "_latest",
        "_prices",
        "_reliable",
        "_share",
        "capacity",
        "conflated",
        "max_bytes",
        "overflow_reason",
        "overflowed",
        "popped",
        "popped_type",
    )

    def __init__(
        self,
        max_per_second: int,
        capacity: int,
        price_share: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self._control: deque[tuple[str, str]] | None = None  # (text, message type)
        self._reliable: deque[Envelope] | None = None
        self._finals: dict[str, int] | None = None  # stream -> final messages in ``_reliable``
        self._latest: dict[Slot, Envelope] | None = None
        self._floor: dict[str, int] | None = None
        self._held: dict[str, list[tuple[Envelope, Delivery]]] | None = None
        self._budget = SlidingWindow(max_per_second)
        share = max(1, max_per_second // 2) if price_share is None else price_share
        self._share = max(1, min(share, max_per_second))
        # Price sends, counted only once the budget has been spent (a flood of must-deliver messages):
        # a connection that never reaches its budget never pays for this second ring.
        self._prices: SlidingWindow | None = None
        self.capacity = capacity
        self.max_bytes = sys.maxsize if max_bytes is None else max_bytes  # None: bounded by count only
        self._bytes = 0  # characters of every text pending or held
        self.conflated = 0  # prices replaced by a newer one before they were sent
        self.overflowed = False
        self.overflow_reason = ""  # which bound was passed, for the close's reason
        self.popped: Envelope | None = None  # the channel message ``pop`` handed out last (None: a reply)
        self.popped_type = ""  # the message type of what ``pop`` handed out last

    def __len__(self) -> int:
        """Frames waiting to be written (held ones are not yet)."""
        return len(self._control or ()) + len(self._reliable or ()) + len(self._latest or ())

    @property
    def pending_bytes(self) -> int:
        """Characters of the texts waiting or held (bytes, for the ASCII the server's JSON mostly is)."""
        return self._bytes

    @property
    def idle(self) -> bool:
        """Nothing is pending or held: a new message may go straight to the socket."""
        return self._control is None and self._reliable is None and self._latest is None and not self._held

    # ───────────── in ─────────────

    def offer(self, envelope: Envelope, delivery: Delivery, now: float) -> Pushed:
        """A channel message for this connection: WRITE when it may go out now, its budget already
        taken (``refund`` gives it back if the socket then declines it); else as ``push``."""
        if (
            self._control is None
            and self._reliable is None
            and self._latest is None
            and not self._held
            and not self.overflowed
        ):
            floor = self._floor
            if floor is not None and envelope.stream in floor and not self._above_floor(envelope):
                return DEFERRED
            if delivery is not CONFLATE or envelope.final:
                self._budget.record(now)  # must-deliver: never held back, but it uses the budget
                return WRITE
            if self._budget.take(now):  # the common case of the hot path stops here
                prices = self._prices
                if prices is not None:
                    prices.record(now)
                return WRITE
            if self._share_fits(now):
                self.wrote(now, True)
                return WRITE
        return self.push(envelope, delivery)

    def wrote(self, now: float, conflated: bool) -> None:
        """A message was written outside ``offer`` (popped): it uses the budget."""
        self._budget.record(now)
        if conflated:
            prices = self._prices
            if prices is not None:
                prices.record(now)

    def refund(self, conflated: bool) -> None:
        """The message ``offer`` said to WRITE was not written (the socket declined it): give back the
        budget it took, at the same ``now``, before it is pushed."""
        self._budget.undo()
        if conflated:
            prices = self._prices
            if prices is not None:
                prices.undo()

    def push_control(self, text: str, kind: str = "control") -> bool:
        """Queue a reply (``kind``: its message type); False (and overflowed) past capacity."""
        if self.overflowed:
            return False
        if self._control is None:
            self._control = deque()
        self._control.append((text, kind))
        self._bytes += len(text)
        return self._check()

    def push(self, envelope: Envelope, delivery: Delivery) -> Pushed:
        """Queue a channel message."""
        if self.overflowed:
            return OVERFLOW  # nothing more piles up on a connection that is being closed
        stream = envelope.stream
        if self._held:
            held = self._held.get(stream)
            if held is not None:
                held.append((envelope, delivery))
                self._bytes += len(envelope.text)
                if len(held) > self.capacity:
                    self._overflow(f"more than {self.capacity} messages pending")
                    return OVERFLOW
                return DEFERRED if self._check() else OVERFLOW
        if self._floor is not None and not self._above_floor(envelope):
            return DEFERRED  # already covered by a history reply
        if delivery is CONFLATE and not envelope.final:
            latest = self._latest
            if latest is None:
                latest = self._latest = {}
            slot = slot_of(envelope)
            replaced = latest.get(slot)
            latest[slot] = envelope  # a replaced one keeps the slot's place in line
            # prices never add to the count of messages: only the bytes can be past their bound
            if replaced is not None:
                self.conflated += 1
                size = len(envelope.text) - len(replaced.text)
                if size:  # most replacements are a price of the same length: nothing to count
                    self._bytes += size
                    if size > 0 and self._bytes > self.max_bytes and not self._check():
                        return OVERFLOW
                return MERGED
            self._bytes += len(envelope.text)
            if self._bytes > self.max_bytes and not self._check():
                return OVERFLOW
            return QUEUED
        if self._reliable is None:
            self._reliable = deque()
        if envelope.final:
            self._line_up(stream)
            finals = self._finals
            if finals is None:
                finals = self._finals = {}
            finals[stream] = finals.get(stream, 0) + 1
        self._reliable.append(envelope)
        self._bytes += len(envelope.text)
        return QUEUED if self._check() else OVERFLOW

    def _line_up(self, stream: str) -> None:
        """Move what of ``stream`` waits to be conflated into the must-deliver line, oldest first: a final
        message of the stream is about to follow it."""
        latest, reliable = self._latest, self._reliable
        if not latest or reliable is None:
            return
        waiting = sorted((env for env in latest.values() if env.stream == stream), key=lambda env: env.seq)
        if not waiting:
            return
        for envelope in waiting:
            del latest[slot_of(envelope)]
            reliable.append(envelope)
        if not latest:
            self._latest = None

    def _above_floor(self, envelope: Envelope) -> bool:
        """False for a message a history reply already covered. The floor of a stream is forgotten at
        its first newer message: delivery is in order per stream, so nothing older can follow."""
        floor = self._floor
        assert floor is not None
        mark = floor.get(envelope.stream)
        if mark is None:
            return True
        if envelope.seq <= mark:
            return False
        del floor[envelope.stream]
        if not floor:
            self._floor = None
        return True

    def _check(self) -> bool:
        """False (and overflowed) once past ``capacity`` messages or ``max_bytes``; one frame alone
        never overflows by its size: it goes out when nothing else waits."""
        if len(self._control or ()) + len(self._reliable or ()) > self.capacity:
            self._overflow(f"more than {self.capacity} messages pending")
        elif self._bytes > self.max_bytes and len(self) + self._held_count() > 1:
            self._overflow(f"more than {self.max_bytes} bytes pending")
        return not self.overflowed

    def _overflow(self, reason: str) -> None:
        self.overflowed = True
        self.overflow_reason = reason

    def _held_count(self) -> int:
        return sum(len(held) for held in self._held.values()) if self._held else 0

    def _recount(self) -> None:
        """Count the pending bytes (and final messages) again, after the rare changes that filter whole
        containers."""
        finals: dict[str, int] = {}
        for envelope in self._reliable or ():
            if envelope.final:
                finals[envelope.stream] = finals.get(envelope.stream, 0) + 1
        self._finals = finals or None
        total = sum(len(text) for text, _ in self._control or ())
        total += sum(len(envelope.text) for envelope in self._reliable or ())
        total += sum(len(envelope.text) for envelope in (self._latest or {}).values())
        for held in (self._held or {}).values():
            total += sum(len(envelope.text) for envelope, _ in held)
        self._bytes = total

    # ───────────── history ─────────────

    def hold(self, stream: str) -> None:
        """Keep live messages of ``stream`` aside until ``covered`` (its history is being read)."""
        if self._held is None:
            self._held = {}
        self._held.setdefault(stream, [])

    def covered(self, stream: str, seq: int) -> Pushed:
        """A history reply covered ``stream`` up to ``seq``: drop anything not newer, and release what
        was held after it."""
        if self._floor is None:
            self._floor = {}
        self._floor[stream] = seq
        if self._latest:
            for slot in [s for s, env in self._latest.items() if env.stream == stream and env.seq <= seq]:
                del self._latest[slot]
            if not self._latest:
                self._latest = None
        if self._reliable:
            kept = deque(env for env in self._reliable if env.stream != stream or env.seq > seq)
            self._reliable = kept or None
        self._recount()
        return self.release(stream)

    def release(self, stream: str) -> Pushed:
        """Stop holding ``stream`` and queue what was held (history could not be read, or was sent)."""
        held = self._held.pop(stream, ()) if self._held else ()
        if self._held is not None and not self._held:
            self._held = None
        self._bytes -= sum(len(envelope.text) for envelope, _ in held)  # pushed again below
        queued = False
        for envelope, delivery in held:
            pushed = self.push(envelope, delivery)
            if pushed is OVERFLOW:
                return pushed
            queued = queued or pushed is QUEUED
        return QUEUED if queued else DEFERRED

    def forget(self, stream: str) -> None:
        """The connection left ``stream``: drop what is pending for it."""
        if self._floor is not None:
            self._floor.pop(stream, None)
            self._floor = self._floor or None
        if self._held is not None:
            self._held.pop(stream, None)
            self._held = self._held or None
        if self._latest:
            for slot in [s for s in self._latest if _stream_of(s) == stream]:
                del self._latest[slot]
            self._latest = self._latest or None
        if self._reliable:
            self._reliable = deque(env for env in self._reliable if env.stream != stream) or None
        self._recount()

    # ───────────── out ─────────────

    def take_control(self) -> list[str]:
        """Every pending reply, for a connection about to close: its last errors still reach it."""
        replies = [text for text, _ in self._control or ()]
        self._control = None
        self._bytes -= sum(len(text) for text in replies)
        return replies

    def pop(self, now: float) -> tuple[str | None, float | None]:
        """The next frame to write (its budget taken), or (None, seconds to wait) when only throttled
        prices remain, or (None, None) when nothing is pending."""
        control = self._control
        if control is not None:
            text, self.popped_type = control.popleft()
            self._bytes -= len(text)
            if not control:
                self._control = None
            self.popped = None
            return text, None
        latest = self._latest
        if latest is not None and not self._budget.fits(now) and self._share_fits(now):
            slot = self._unblocked(latest)
            if slot is not None:  # budget spent: the prices' guaranteed share
                return self._pop_latest(latest, now, slot), None
        reliable = self._reliable
        if reliable is not None:
            envelope = reliable.popleft()
            self._bytes -= len(envelope.text)
            if not reliable:
                self._reliable = None
            if envelope.final:
                self._popped_final(envelope.stream)
            self._budget.record(now)
            self.popped, self.popped_type = envelope, envelope.type
            return envelope.text, None
        if latest is None:
            return None, None
        prices = self._prices
        wait = self._budget.wait(now) if prices is None else min(self._budget.wait(now), prices.wait(now))
        if wait > 0:
            return None, wait
        return self._pop_latest(latest, now, next(iter(latest))), None

    def _unblocked(self, latest: dict[Slot, Envelope]) -> Slot | None:
        """The first conflated slot that may go out ahead of the must-deliver line: not one of a stream
        whose final message waits in that line (it would pass it)."""
        finals = self._finals
        if finals is None:
            return next(iter(latest))
        return next((slot for slot in latest if _stream_of(slot) not in finals), None)

    def _popped_final(self, stream: str) -> None:
        finals = self._finals
        if finals is None or stream not in finals:
            return
        if finals[stream] > 1:
            finals[stream] -= 1
        else:
            del finals[stream]
            if not finals:
                self._finals = None

    def _share_fits(self, now: float) -> bool:
        """Whether a price fits the prices' guaranteed share (asked once the budget is spent)."""
        prices = self._prices
        if prices is None:
            # Counted from now on; until a second has passed, the share is taken as used (the prices
            # sent before were not counted), so the share never adds to a budget that prices spent.
            prices = self._prices = SlidingWindow(self._share, slack=0.0)  # a floor: exact
            for _ in range(self._share):
                prices.record(now)
        return prices.fits(now)

    def _pop_latest(self, latest: dict[Slot, Envelope], now: float, slot: Slot) -> str:
        envelope = latest.pop(slot)
        self._bytes -= len(envelope.text)
        if not latest:
            self._latest = None
        self.wrote(now, True)
        self.popped, self.popped_type = envelope, envelope.type
        return envelope.text
