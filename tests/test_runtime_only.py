"""Run in the runtime-only venv (``FLARELIGHT_RUNTIME_ONLY=1``, see the Makefile): proves that venv has no
TensorFlow, so the runtime tests that pass there need none."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest


@pytest.mark.skipif(os.environ.get("FLARELIGHT_RUNTIME_ONLY") != "1", reason="only meaningful in the runtime-only venv")
def test_runtime_venv_has_no_training_stack():
    for heavy in ("tensorflow", "keras", "tf2onnx", "click", "matplotlib"):
        assert importlib.util.find_spec(heavy) is None, f"{heavy} is installed in the runtime-only venv"
    import flarelight.runtime  # noqa: F401

    assert "tensorflow" not in sys.modules
