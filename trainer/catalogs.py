"""Deprecated alias of :mod:`flarelight.trainer.labels` (input labels); removed in the next release."""
from __future__ import annotations

import warnings

from .labels import *  # noqa: F401,F403
from .labels import __all__  # noqa: F401

warnings.warn("flarelight.trainer.catalogs is renamed flarelight.trainer.labels; the old name goes in the next "
              "release", DeprecationWarning, stacklevel=2)
