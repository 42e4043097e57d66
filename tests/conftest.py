"""Test-session plumbing shared by every test folder.

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
