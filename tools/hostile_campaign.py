"""The hostile campaign's old name: runs ``python -m tools.campaign`` (see tools/campaign/)."""

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
runpy.run_module("tools.campaign", run_name="__main__", alter_sys=True)
