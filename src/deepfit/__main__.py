"""``python -m deepfit``: the same as the ``deepfit`` command."""

from deepfit.entry import run

run()
