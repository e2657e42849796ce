"""Hypothesis profiles for the fuzz suite, and the count of cases printed after the run.

- "ci" (default): derandomized (the same cases on every run, reproducible in CI), bounded
  to keep the fuzz suite under about a minute.
- "thorough": random and ten times bigger, for a local run:
  `SELFCHECK_FUZZ_PROFILE=thorough pytest tests/fuzz`.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings

PROFILE_ENV = "SELFCHECK_FUZZ_PROFILE"
_COMMON = {
    "deadline": None,  # a loaded CI machine is slow; we look for errors, not timings
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "database": None,  # nothing written under .hypothesis/
}
settings.register_profile("ci", max_examples=25, derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("thorough", max_examples=250, **_COMMON)  # type: ignore[arg-type]
PROFILE = os.environ.get(PROFILE_ENV, "ci")

# (endpoint, kind of case) -> requests sent; filled by the tests, printed at the end.
CASES: Counter[tuple[str, str]] = Counter()
STATUSES: Counter[int] = Counter()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CASES:
        return
    by_kind: Counter[str] = Counter()
    for (_endpoint, kind), number in CASES.items():
        by_kind[kind] += number
    endpoints = len({endpoint for endpoint, _kind in CASES})
    terminalreporter.write_sep("-", f"fuzz: hypothesis profile {PROFILE!r}")
    terminalreporter.write_line(
        f"{sum(CASES.values())} requests to {endpoints} form endpoints; by kind: "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))
    )
    terminalreporter.write_line(
        "statuses: " + ", ".join(f"{status}: {n}" for status, n in sorted(STATUSES.items()))
    )


settings.load_profile(PROFILE)
