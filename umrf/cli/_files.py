"""Files the demos write: written atomically, so a crash never leaves a half-written one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def save_npz(path: Path, **arrays: Any) -> None:
    """Write ``arrays`` to ``path`` as ``.npz`` atomically: a temporary file, then one rename."""
    import numpy as np

    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
