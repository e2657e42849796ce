"""scripts/dependency-audit: skipped, saying so, when the advisory database cannot be reached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "dependency-audit"


def test_offline_audit_is_skipped_and_says_so() -> None:
    env = {
        **os.environ,
        "SELFCHECK_VENV": str(Path(sys.executable).parent.parent),
        "SELFCHECK_AUDIT_PROBE_URL": "http://127.0.0.1:9/unreachable",  # discard port
    }
    done = subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "dependency audit: SKIPPED - offline" in done.stdout


def test_the_test_script_runs_the_audit() -> None:
    script = (SCRIPT.parent / "test").read_text(encoding="utf-8")
    assert "scripts/dependency-audit" in script
