"""Coverage-guided fuzzing (atheris, libFuzzer) of what a client frame becomes: the decoder and the
session's answer to it.

Each input is up to ``MAX_FRAMES`` client frames separated by NUL bytes (JSON never contains a raw NUL);
a frame that is valid UTF-8 arrives as a text frame, any other as a binary one, as over the WebSocket.
They go, in order, through one new session of a real ``StreamingService``, and the target fails on any
exception and on any frame not answered as the protocol says (``fuzz/probe.py``: exactly one reply, an
``error`` only with a documented ``code``). ``tests/fuzz/test_frames.py`` runs the same oracle under
hypothesis.

From the repository root; libFuzzer writes the inputs it finds to the first directory and only reads the
seeds (``fuzz/corpus/frames``) from the second; a failing input is written as ``./crash-<sha1>``. Short
run (the suite runs one like it, tests/fuzz/test_atheris.py)::

    mkdir -p /tmp/frames-corpus
    .venv/bin/python -m fuzz.frames -runs=20000 -dict=fuzz/frames.dict /tmp/frames-corpus fuzz/corpus/frames

Long run (an hour; run it again with the same first directory to go on from what it found)::

    .venv/bin/python -m fuzz.frames -max_total_time=3600 -dict=fuzz/frames.dict /tmp/frames-corpus fuzz/corpus/frames

A crash file replays with ``.venv/bin/python -m fuzz.frames crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["legend"]):  # coverage of our code, not of the libraries'
    from fuzz.probe import FrameProbe, split_frames


def main(argv: list[str]) -> None:
    probe = FrameProbe()

    def one_input(data: bytes) -> None:
        probe.check(split_frames(data))

    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
