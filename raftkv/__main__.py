"""``python -m raftkv`` = the ``raftkv`` command (cli.py)."""

import sys

from raftkv.cli import main

sys.exit(main())
