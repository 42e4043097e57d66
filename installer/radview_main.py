"""Entry point of the packaged (PyInstaller) radview: the same ``radview`` command.

``multiprocessing.freeze_support()`` runs first, before any radview import: the AI process
is started with the ``spawn`` method, which in a frozen app re-runs this executable with
multiprocessing's arguments; freeze_support() then runs the child (ai.process.worker.main)
and exits, so the child never imports the viewer, Qt or VTK.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from viewer.cli import main

    sys.exit(main())
