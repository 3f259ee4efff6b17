"""``python -m solarpipe`` is the ``solarpipe`` command."""
import sys

from .cli import main

sys.exit(main())
