"""flarelight.trainer: build, train, evaluate and export the stella CNN (needs ``pip install flarelight[train]``).

TensorFlow is imported by the submodules that need it, not here, so ``import flarelight.trainer`` is cheap;
it fails at once, with the install command, when the training extra is missing.
"""
from importlib.util import find_spec as _find_spec

_missing = [m for m in ("tensorflow", "keras", "tf2onnx", "onnx") if _find_spec(m) is None]
if _missing:
    raise ImportError(
        f"flarelight.trainer needs {', '.join(_missing)}, which are not installed: "
        "pip install flarelight[train]")
