"""The soak run in short (make soak runs it for two minutes with 50 clients): no 5xx, the journal holds
exactly what the clients were told, reconcile and verify_audit clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

from config.services import checkout_suffix

ROOT = Path(__file__).resolve().parents[2]


def soak_environment() -> dict[str, str]:
    """The soak's own database and Redis database for this checkout, on the servers the tests use, so
    that two checkouts' test runs don't drop and flush each other's."""
    suffix = checkout_suffix(ROOT)
    database = urlparse(os.environ["DATABASE_URL"])
    redis = urlparse(os.environ["REDIS_URL"])
    return {
        **os.environ,
        "SOAK_DATABASE_URL": urlunparse(database._replace(path=f"/gl_soak_{suffix}")),
        "SOAK_REDIS_URL": urlunparse(redis._replace(path=f"/{4 + int(suffix, 16) % 12}")),
    }


@pytest.mark.slow
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
        env=soak_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "NO " not in result.stdout
    # The books' checks compare sets, which an idle run would pass too: the clients really traded.
    figures = json.loads((tmp_path / "soak.json").read_text())["figures"]
    assert figures["statuses"].get("201", 0) > 0
    assert min(figures["operations"].get(op, 0) for op in ("transfer", "order", "read", "pledge")) > 0
