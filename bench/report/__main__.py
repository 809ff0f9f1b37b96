"""``python -m bench.report``: rewrite the generated benchmark parts of the docs."""

import sys

from bench.report import main

sys.exit(main())
