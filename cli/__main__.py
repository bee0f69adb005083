"""``python -m cli``: the ``govshare`` command."""

import sys

from cli.main import main

sys.exit(main())
