"""The README's steps work as written: its curl walk-through and its ``greenledger`` commands run, command by
command, in bash against a live server loaded with the demo market (``seed_demo``), with only the server's
address changed. A step fails the test when its command fails or an answer is an error body.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from core import clock
from exchange.services.sealing import audit_seal

# reset_sequences: account numbers as a fresh make run gives them (the README names CN-100-000003).
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, reset_sequences=True)]
ROOT = Path(__file__).resolve().parents[2]
README_URL = "http://127.0.0.1:8000"


def _block_after(heading: str, fence: str = "```sh") -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(fence, text.index(heading)) + len(fence)
    return text[start : text.index("```", start)]


def _steps(block: str) -> list[tuple[str, str]]:
    """The walk-through's numbered steps: (title, the commands of the step, comments and sample output
    dropped)."""
    steps: list[tuple[str, list[str]]] = [("setup", [])]
    lines = block.splitlines()
    for index, line in enumerate(lines):
        numbered = re.match(r"# (\d+)\. (.*)", line)
        if numbered:
            steps.append((numbered.group(0), []))
        elif line.strip() and not line.lstrip().startswith("#"):
            previous = lines[index - 1] if index else ""
            if previous.rstrip().endswith("\\") and steps[-1][1]:
                steps[-1][1][-1] += "\n" + line
            else:
                steps[-1][1].append(line)
    return [(title, "\n".join(commands)) for title, commands in steps]


def _session_moment() -> datetime:
    """10:00 China time on today's trading day, or the next weekday's: the book's session is open."""
    day = clock.trading_day()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(10, 0), clock.MARKET_TZ)


def _sequences_past_existing_rows() -> None:
    """reset_sequences restarts every sequence at 1, but rows the migrations load (the shipped markets'
    rulebooks) may still be there, as after a fresh migrate: move each sequence past its table's rows,
    as a fresh ``make run`` has them (empty tables still start at 1)."""
    from django.apps import apps
    from django.core.management.color import no_style
    from django.db import connection

    statements = connection.ops.sequence_reset_sql(no_style(), apps.get_models())
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


@pytest.fixture
def demo(live_server):
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    _sequences_past_existing_rows()
    call_command("seed_demo", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    clock.set_pinned(_session_moment())
    try:
        yield live_server.url
    finally:
        clock.set_pinned(None)


def _bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _answers(output: str) -> list[object]:
    """Every JSON document in a step's output (curl prints one per line, json.tool one per block)."""
    decoder, found, index = json.JSONDecoder(), [], 0
    while index < len(output):
        start = min((i for i in (output.find("{", index), output.find("[", index)) if i >= 0), default=-1)
        if start < 0:
            break
        try:
            value, end = decoder.raw_decode(output, start)
        except ValueError:
            index = start + 1
            continue
        found.append(value)
        index = end
    return found


@pytest.fixture
def proof_file_removed():
    """Step 6 saves proof.json in the checkout, as the README says; the test leaves no file behind."""
    existed = (ROOT / "proof.json").exists()
    yield
    if not existed:
        (ROOT / "proof.json").unlink(missing_ok=True)


@pytest.mark.usefixtures("proof_file_removed")
def test_the_readme_walk_through_with_curl_runs_as_written(demo):
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        # manage.py in the walk-through (create_token) must use the live server's database.
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
    }
    block = _block_after("## A walk-through with curl").replace(README_URL, demo)
    steps = _steps(block)
    setup = steps[0][1]
    done = []
    for title, commands in steps[1:]:
        if "audit/events/318/proof" in commands:
            # "A minute later the event is sealed": seal now, and ask for the retirement's event.
            audit_seal()
            event = next(a for a in _answers(done[-1]) if isinstance(a, dict) and "transaction" in a)
            commands = commands.replace("318", str(event["transaction"]["audit"]["event"]))
        result = _bash(f"set -e\n{setup}\n{commands}", env)
        assert result.returncode == 0, f"{title}\n{commands}\n{result.stdout}\n{result.stderr}"
        answers = _answers(result.stdout)
        errors = [a for a in answers if isinstance(a, dict) and "error" in a]
        assert errors == [], f"{title}: {errors}"
        done.append(result.stdout)
    assert len(done) == 6
    assert "'checkpoint'" in done[-1]  # the proof checked locally: {'seq': ..., 'checkpoint': ..., 'latest': ...}


def test_the_readme_greenledger_commands_run_as_written(demo):
    activate = ROOT / ".venv" / "bin" / "activate"
    if not activate.exists():
        pytest.skip("needs the project's virtualenv (make install)")
    block = _block_after("The `greenledger` command prints").replace(README_URL, demo)
    commands = [
        line.split("#")[0].rstrip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[0] == ". .venv/bin/activate"
    env = {**os.environ, "GREENLEDGER_LANGUAGE": "en"}
    for command in commands[2:]:
        if "proof verify 318" in command:
            # the README's event number is an example: the demo's latest event, sealed now
            from exchange.models import AuditEvent

            audit_seal()
            command = command.replace("318", str(AuditEvent.objects.order_by("-seq").values_list("seq", flat=True)[0]))
        result = _bash(f"set -e\n{commands[0]}\n{commands[1]}\n{command}", env)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
