"""python -m bot: the same as the yimi-bot console script."""

import sys

from bot.cli import main

sys.exit(main())
