"""``python -m nbchat.engine serve ...``: the engine's child process."""

import sys

from nbchat.engine.server import main

sys.exit(main())
