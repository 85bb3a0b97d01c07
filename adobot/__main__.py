"""``python -m adobot``: the same as the ``adobot`` command."""
from adobot.runtime.cli import main

raise SystemExit(main())
