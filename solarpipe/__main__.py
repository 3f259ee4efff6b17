"""``python -m solarpipe`` is the ``solarpipe`` command.

Guarded: worker processes of solarpipe.parallel (spawn) re-import the main
module and must not run the command again.
"""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
