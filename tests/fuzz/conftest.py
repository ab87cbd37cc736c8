"""Hypothesis profiles for the fuzz tests (docs/security.md, "Fuzzing").

``ci`` (default): a bounded number of examples per test so the whole directory runs in seconds.
``long``: many more, no deadline, for a soak run:
``RAFTKV_FUZZ=long python3 -m pytest tests/fuzz -q`` (``RAFTKV_FUZZ_EXAMPLES`` overrides the count).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("RAFTKV_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=False,
    suppress_health_check=_SUPPRESS,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("RAFTKV_FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=_SUPPRESS,
)
settings.load_profile(os.environ.get("RAFTKV_FUZZ", "ci"))
