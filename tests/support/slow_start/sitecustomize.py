"""On ``PYTHONPATH``, delays the start of every Python process but ``legend serve`` itself by
``TEST_SLOW_START`` seconds, before any code of its own runs: a supervisor's workers then spend that long
in the window where their supervisor can die before they could tie their life to it."""

import os
import sys
import time

_DELAY = os.environ.get("TEST_SLOW_START")
if _DELAY and "serve" not in sys.orig_argv:
    time.sleep(float(_DELAY))
