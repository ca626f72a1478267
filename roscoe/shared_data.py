"""Where the project's third-party datasets live (source datasets, human judgments, training
sets): ``$ROSCOE_SHARED_DATA``, else ``shared/data`` beside the checkout."""
from __future__ import annotations

import os
from pathlib import Path


def shared_data() -> Path:
    return Path(os.environ.get("ROSCOE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
