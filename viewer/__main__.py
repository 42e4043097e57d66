"""``python -m viewer`` / ``radview``: headless subcommands (see viewer.cli)."""

import sys

from viewer.cli import main

if __name__ == "__main__":
    sys.exit(main())
