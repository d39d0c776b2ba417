"""`grader worker` and `grader serve` (and its old name, `grader service`) refuse to grade untrusted code without a
sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_settings

from grader.errors import SandboxUnavailable
from grader.service.server import settings_env


@pytest.mark.parametrize(
    "command",
    [
        ["worker"],
        ["worker", "--celery"],
        ["serve", "--port", "0", "--workers", "1"],
        ["service", "--port", "0", "--workers", "1"],
    ],
)
def test_without_a_sandbox_grading_does_not_start(tmp_path: Path, command: list[str]) -> None:
    """With bubblewrap out of reach, does each grading command stop at once, saying why and what to do?"""
    settings = make_settings(tmp_path, sandbox=True, broker_url="redis://127.0.0.1:9/0")
    env = {**os.environ, **settings_env(settings), "PATH": str(tmp_path / "no-tools")}
    done = subprocess.run(
        [sys.executable, "-m", "grader", *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == SandboxUnavailable.exit_code, done.stderr
    assert "bubblewrap" in done.stderr and "--unsafe-no-sandbox" in done.stderr
    assert ("use `grader serve`" in done.stderr) == (command[0] == "service")  # the old name still works, and says so
