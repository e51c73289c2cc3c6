"""Where the shared development data lies: `shared/` beside the repository (as in CI),
or PREFARENA_MTBENCH_DIR."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MTBENCH_DIR = Path(
    os.environ.get("PREFARENA_MTBENCH_DIR", REPO_ROOT.parent / "shared" / "data" / "mtbench")
)
DEMO_DIR = REPO_ROOT / "annotation" / "demo_data" / "mtbench"
