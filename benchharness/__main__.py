"""``python -m benchharness``."""

import sys

from benchharness.cli import main

sys.exit(main())
