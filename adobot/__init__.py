"""adobot: actions that let bots and AI agents automate Azure DevOps.

``from adobot import api`` is the Python API (run bots, call actions one by one); the ``adobot``
command is ``adobot.cli``. Importing this package imports nothing else.
"""

__version__ = "0.1.0"
