"""The soak run in short (make soak runs it for two minutes with 50 clients): no 5xx, the journal holds
exactly what the clients were told, reconcile and verify_audit clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_a_short_soak_keeps_the_books(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--seconds",
            "20",
            "--clients",
            "20",
            "--json",
            str(tmp_path / "soak.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "NO " not in result.stdout
