"""``radview --self-test``: headless (no DISPLAY), offline, one line per step, exit status.

The full self-test takes ~12 s here (2 cores), so it runs in the normal (non-tensorflow)
test run: it is started in a subprocess, whose AI child imports TensorFlow, never this
process. ``test_self_test_offline`` runs it again in a fresh network namespace
(``unshare -rn``) and is skipped where that is not allowed.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import pytest

from ai.registry import Registry, shipped_models_dir
from viewer.cli import main, selftest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXED_STEPS = ["demo", "load-ct", "load-cr", "render-ct", "render-cr", "models-found"]


def expected_steps() -> list[str]:
    models = Registry([shipped_models_dir()]).list_models()
    classical = [f"model-{m.name}" for m in models if m.is_classical]
    networks = [f"model-{m.name}" for m in models if not m.is_classical]
    return FIXED_STEPS + classical + networks + ["export-seg", "export-nifti", "anonymize"]


def headless_env() -> dict:
    """This environment without a display (and without a forced VTK window class)."""
    drop = (
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "VTK_DEFAULT_OPENGL_WINDOW",
        "RADVIEW_GL_WINDOW",
        "RADVIEW_MODELS",
    )
    return {k: v for k, v in os.environ.items() if k not in drop}


def check_output(proc: subprocess.CompletedProcess) -> None:
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = [ln.split()[1] for ln in lines if ln.startswith("PASS  ")]
    assert steps == expected_steps()
    assert not [ln for ln in lines if ln.startswith("FAIL")]
    assert lines[-1].startswith(f"self-test passed: {len(steps)} steps")
    for ln in lines[:-1]:  # PASS  step  (1.23 s)
        assert ln.endswith(" s)") and float(ln.rsplit("(", 1)[1][:-3]) >= 0


def test_self_test_passes_headless():
    proc = subprocess.run(
        [sys.executable, "-m", "viewer", "--self-test"],
        env=headless_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    check_output(proc)
    assert "tensorflow" not in sys.modules


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return (
            subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=30).returncode
            == 0
        )
    except OSError:
        return False


@pytest.mark.skipif(
    not _unshare_works(), reason="unshare -rn (user + network namespace) is not allowed here"
)
def test_self_test_offline():
    """In a new network namespace only a down loopback exists: any download would fail."""
    probe = (
        "import socket, sys\n"
        "names = [n for _, n in socket.if_nameindex()]\n"
        "assert names == ['lo'], names\n"
        "try:\n"
        "    socket.create_connection(('93.184.215.14', 80), timeout=3)\n"
        "except OSError:\n"
        "    pass\n"
        "else:\n"
        "    sys.exit('network reachable')\n"
    )
    command = f'{sys.executable} -c "$PROBE" && exec {sys.executable} -m viewer --self-test'
    proc = subprocess.run(
        ["unshare", "-rn", "sh", "-c", command],
        env=dict(headless_env(), PROBE=probe),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    check_output(proc)


def test_failed_step_fails_the_run(monkeypatch):
    """A failing step prints FAIL with its reason, the steps needing it say so, exit 1."""

    def broken(run):
        raise OSError("disk full")

    monkeypatch.setattr(selftest, "_demo", broken)
    out = io.StringIO()
    assert selftest.run(out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == "FAIL  demo: OSError: disk full"
    assert "FAIL  load-ct: not run: needs demo" in lines
    assert "FAIL  export-seg: not run: needs ct" in lines
    assert any(ln.startswith("PASS  models-found") for ln in lines)
    assert lines[-1].startswith("self-test FAILED")
    assert "tensorflow" not in sys.modules


def test_self_test_takes_no_command(capsys):
    assert main(["--self-test", "info", "."]) == 2
    assert "--self-test takes no command" in capsys.readouterr().err
