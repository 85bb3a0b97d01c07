"""``python -m adobot``: the same as the ``adobot`` command."""
from adobot.cli import main

raise SystemExit(main())
