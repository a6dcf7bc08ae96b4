"""Shared test helpers.

`require(name, available, why)`: tests that need a real component (OpenSSH server, Slurm)
skip with a reason when it is missing, except under CI=true, where a missing component
is a failure: CI must prove those paths, not skip them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
DATA = Path(__file__).parent / "data"


def require(name: str, available: bool, why: str = "") -> None:
    if available:
        return
    message = f"{name} is not available{': ' + why if why else ''}"
    if IN_CI:
        pytest.fail(f"CI=true and {message} (scripts/setup.sh --system installs it)")
    pytest.skip(message)


@pytest.fixture
def data_dir() -> Path:
    return DATA
