"""``python -m deepfit``: the same as the ``deepfit`` command."""

import sys

from deepfit.cli import main

sys.exit(main())
