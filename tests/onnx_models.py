"""Small ONNX models built by hand with onnx.helper, for runtime tests that need no TensorFlow.

``linear_model`` is sigmoid(w . window + b): cheap, deterministic, and sensitive to every cadence of the
window, so any windowing mistake changes its output.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from flarelight.runtime.metadata import METADATA_KEY, ModelMetadata, Preprocessing


def linear_weights(window: int, channels: int, seed: int) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, (window * channels, 1)).astype(np.float32)
    return w, float(-w[::channels].sum())  # an all-ones flux window scores sigmoid(0) = 0.5 (flag channel aside)


def linear_model(path: str | Path, pre: Preprocessing | None = None, seed: int = 0, model_id: str = "linear",
                 metadata: str | None = None, input_name: str = "window") -> Path:
    """Write sigmoid(w . flatten(window) + b) as a flarelight ONNX file and return its path."""
    pre = pre or Preprocessing()
    c = pre.n_channels
    w, b = linear_weights(pre.window, c, seed)
    nodes = [
        helper.make_node("Flatten", [input_name], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes, "linear",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", pre.window, c])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([b], np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata is None:
        metadata = ModelMetadata(preprocessing=pre, model_id=model_id, seed=seed).to_json()
    if metadata:
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, metadata
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, path)
    return path


def linear_reference(windows: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same model in numpy, float64: windows of shape (m, window, channels) -> (m,)."""
    m, window, c = windows.shape
    w, b = linear_weights(window, c, seed)
    z = windows.reshape(m, -1).astype(np.float64) @ w.astype(np.float64)[:, 0] + b
    return 1.0 / (1.0 + np.exp(-z))
