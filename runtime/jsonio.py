"""JSON for results and records: numpy values made serialisable, and files written atomically.

The one JSON helper of the trainer and the benches (``json.dumps(obj, default=json_default)``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path


def json_default(o: Any) -> Any:
    """``default=`` for :func:`json.dumps`: numpy scalars and arrays as Python values, anything else as ``str``."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def dumps(obj: Any, indent: int | None = 1) -> str:
    """``obj`` as JSON text, numpy values included (see :func:`json_default`)."""
    return json.dumps(obj, indent=indent, default=json_default)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (a reader never sees a half-written file)."""
    path = Path(path)
    text = dumps(obj, indent)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return path


__all__ = ["json_default", "dumps", "write_json"]
