"""Test-session plumbing shared by every test folder.

TensorFlow and VTK's OpenGL rendering cannot share a process (Mesa calls TF's bundled LLVM
and the process segfaults). Tests that import TensorFlow in the test process live under
tests/ai/ and get the ``tensorflow`` marker; they are collected only when asked for
(``-m tensorflow`` or tests/ai on the command line), since collecting imports TensorFlow.
``make test`` runs ``pytest -m "not tensorflow"`` and then ``pytest -m tensorflow``, each in
its own process.

pytest-xvfb stops its Xvfb in an atexit handler; Qt widgets that embedded VTK render
windows then notice the vanished X server during interpreter finalisation and call
exit(1) ("The X11 connection broke"), turning a green run red. So, once the session is
over, we stop Xvfb ourselves and leave with pytest's own exit status before finalisation
(stdout/stderr flushed first). Nothing else changes.
"""

from __future__ import annotations

import atexit
import os
import sys

import pytest

_status: dict[str, int | None] = {"code": None}


_AI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ai")


def _asked_for_ai(config) -> bool:
    """True when this run is meant for the TensorFlow tests (-m tensorflow, or tests/ai
    named on the command line)."""
    if config.getoption("markexpr").strip() == "tensorflow":
        return True
    return any(os.path.abspath(str(a).split("::")[0]).startswith(_AI_DIR)
               for a in config.args)


def pytest_ignore_collect(collection_path, config):
    """Leave tests/ai uncollected (importing it loads TensorFlow) unless asked for."""
    inside = str(collection_path).startswith(_AI_DIR)
    if inside and not _asked_for_ai(config):
        return True
    return None


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if str(item.path).startswith(_AI_DIR):
            item.add_marker(pytest.mark.tensorflow)
    if _asked_for_ai(config):
        return
    config.issue_config_time_warning(
        pytest.PytestWarning(
            "tests/ai (TensorFlow) not collected: TensorFlow cannot share a process with "
            "the VTK tests; run `pytest -m tensorflow` (make test runs both)"
        ),
        stacklevel=2,
    )


def pytest_sessionfinish(session, exitstatus) -> None:
    _status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)  # after pytest-xvfb has started its Xvfb
def pytest_configure(config) -> None:
    try:
        import pytest_xvfb
    except ImportError:
        return
    if pytest_xvfb.xvfb_instance is None:
        return

    def _exit_before_x_goes() -> None:
        if _status["code"] is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pytest_xvfb.shutdown_xvfb()
        os._exit(_status["code"])

    atexit.register(_exit_before_x_goes)  # runs before pytest-xvfb's own handler (LIFO)
