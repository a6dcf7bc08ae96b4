"""`fleetops` and `fleetops demo` entry points: failures are one line, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from console.tui import run


def test_missing_inventory_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    args = argparse.Namespace(inventory=str(tmp_path / "nope.toml"))
    assert run.run_console(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("fleetops: ") and "file not found" in err and err.count("\n") == 1


@pytest.mark.parametrize(("script", "line"), [
    pytest.param("print('/tmp/x/inventory.toml', flush=True); import time; time.sleep(5)",
                 "/tmp/x/inventory.toml", id="first-line"),
    pytest.param("import sys; sys.exit(3)", "", id="exits-silently"),
    pytest.param("import time; time.sleep(5)", "", id="silent-past-timeout"),
])
def test_demo_server_first_line(script: str, line: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert run._first_line(proc, timeout_s=1.0) == line
    finally:
        run._stop(proc)
    assert proc.poll() is not None


def test_demo_that_cannot_start_says_why(monkeypatch, capsys) -> None:
    from console.demo.server import DemoSpec

    real_popen = subprocess.Popen

    def failing(*_a, **_kw):
        return real_popen([sys.executable, "-c", "import sys; print('boom: no keys', "
                                 "file=sys.stderr); sys.exit(1)"], stdout=subprocess.PIPE,
                                stderr=_kw["stderr"])

    monkeypatch.setattr(run.subprocess, "Popen", failing)
    assert run.run_demo(DemoSpec(nodes=2, dcs=1), argparse.Namespace()) == 1
    assert capsys.readouterr().err == "fleetops: demo server did not start: boom: no keys\n"
