"""Fuzz tests: the hypothesis profile (HYPOTHESIS_PROFILE, tests/support/fuzzing.py) is loaded first."""

from __future__ import annotations

import tests.support.fuzzing  # noqa: F401  (registers and loads the profiles)
