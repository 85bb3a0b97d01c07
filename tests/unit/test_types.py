"""The Python API is typed (py.typed) and its public surface passes a strict type checker."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

PUBLIC = ["adobot/__init__.py", "adobot/api.py", "adobot/__main__.py"]


def test_the_public_surface_passes_mypy_strict(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--cache-dir", str(tmp_path), *PUBLIC], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout
    assert (ROOT / "adobot" / "py.typed").exists()
