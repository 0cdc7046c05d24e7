"""`python -m replication.cli`: the same as `repl`."""

import sys

from . import main

sys.exit(main())
