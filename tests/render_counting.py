"""For tests whose renders are counted, not run: no full garbage collection after each one.

`blank_cache.prefill` runs `gc.collect()` after every blank form it renders, to free one
document's layout (hundreds of thousands of objects) before the next (docs/performance.md,
"Blank forms, third pass"). A counted render leaves no layout, but the collection still walks
the whole heap of the test process: 0.5-3 s each on the shared machine, 24 to 48 per prefill,
which made these tests the slowest of the suite (test_prefill_renders_each_blank_form_once:
44 s on SQLite, 60 s on PostgreSQL, in the 2026-12-07 rehearsal). The collection is counted
instead, so a test can still check that one follows each render.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from selfcheck.paper import blank_cache


def count_collections(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """Replace the full collection of `blank_cache` by a counter (one entry per call)."""
    collections: list[None] = []

    def collect() -> int:
        collections.append(None)
        return 0

    monkeypatch.setattr(blank_cache, "gc", SimpleNamespace(collect=collect))
    return collections
