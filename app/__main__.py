"""``python -m app``: the gridscore command."""

import sys

from app.cli import main

sys.exit(main())
