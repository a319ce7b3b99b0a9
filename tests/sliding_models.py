"""Small sliding-ready models built with onnx.helper, for runtime tests that need neither TensorFlow nor the trainer.

``TinyNet`` is a stella-shaped CNN with ``valid`` convolutions (Conv -> ReLU -> MaxPool(2) per block, Flatten,
Dense -> ReLU, Dense -> sigmoid) and random weights. ``write_member`` writes its per-window graph ``X.onnx``
and, built here independently of ``flarelight.trainer.sliding`` (dilated Conv and dilated MaxPool nodes, the
dense layer as one dilated Conv), its sliding graph ``X.sliding.onnx``. ``reference`` is the same network in
plain float64 numpy, one window at a time, with ``same`` padding as an option (to check the trainer's
reference against).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from flarelight.runtime.metadata import METADATA_KEY, ModelMetadata, Preprocessing
from flarelight.runtime.sliding import SLIDING_FORMAT, SLIDING_KEY, sliding_path


@dataclass
class TinyNet:
    """Weights: convs [(w (kernel, in, out), b)], dense [(w (in, out), b)] (the last one has 1 output)."""

    window: int
    channels: int
    convs: list
    dense: list
    padding: str = "valid"

    def positions(self) -> int:
        n = self.window
        for w, _ in self.convs:
            n = (n - (w.shape[0] - 1 if self.padding == "valid" else 0)) // 2
        return n


def tiny_net(window: int = 48, channels: int = 1, filters=(4, 6), kernels=(5, 3), dense: int = 8, seed: int = 0,
             padding: str = "valid") -> TinyNet:
    """Random weights scaled so that probabilities of noisy flux near 1 spread over (0, 1)."""
    rng = np.random.default_rng(seed)
    convs, c = [], channels
    for f, k in zip(filters, kernels):
        convs.append((rng.normal(0, 1.0 / np.sqrt(k * c), (k, c, f)).astype(np.float32),
                      rng.normal(0, 0.1, f).astype(np.float32)))
        c = f
    net = TinyNet(window, channels, convs, [], padding)
    n = net.positions()
    w1 = rng.normal(0, 1.0 / np.sqrt(n * c), (n * c, dense)).astype(np.float32)
    w2 = rng.normal(0, 1.0 / np.sqrt(dense), (dense, 1)).astype(np.float32)
    net.dense = [(w1, rng.normal(0, 0.1, dense).astype(np.float32)), (w2, np.zeros(1, np.float32))]
    # calibrate: an all-ones window scores 0.5 and windows with 5% noise spread over logits of std ~1.5
    probe = np.ones((31, window, channels))
    probe[1:, :, 0] += rng.normal(0, 5e-2, (30, window))
    z = _logits(net, probe)
    gain = 1.5 / max(float(np.std(z[1:])), 1e-3)
    net.dense[1] = ((w2 * gain).astype(np.float32), np.array([-gain * z[0]], np.float32))
    return net


def _logits(net: TinyNet, windows: np.ndarray) -> np.ndarray:
    out = []
    for x in np.asarray(windows, np.float64):  # one window at a time, plain loops over positions
        for w, b in net.convs:
            k = w.shape[0]
            if net.padding == "same":
                x = np.pad(x, (((k - 1) // 2, k - 1 - (k - 1) // 2), (0, 0)))
            x = np.array([np.maximum(np.einsum("kc,kco->o", x[p:p + k], w.astype(np.float64)) + b, 0.0)
                          for p in range(x.shape[0] - k + 1)])
            n = x.shape[0] // 2
            x = np.maximum(x[0:2 * n:2], x[1:2 * n:2])
        z = x.reshape(-1)
        (w1, b1), (w2, b2) = net.dense
        z = np.maximum(z @ w1.astype(np.float64) + b1, 0.0)
        out.append(float(z @ w2.astype(np.float64)[:, 0] + b2[0]))
    return np.array(out)


def reference(net: TinyNet, windows: np.ndarray) -> np.ndarray:
    """Probabilities of windows (m, window, channels), float64."""
    return 1.0 / (1.0 + np.exp(-_logits(net, windows)))


def _save(graph, path: Path, props: dict[str, str]) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in props.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_member(folder: Path, net: TinyNet, pre: Preprocessing | None = None, seed: int = 0,
                 sliding: bool = True, name: str = "tiny") -> Path:
    """Write ``<folder>/<name>-s<seed>.onnx`` (per-window) and, with ``sliding``, its sliding graph."""
    if net.padding != "valid":
        raise ValueError("the test builder writes valid-padding models only")
    pre = pre or Preprocessing(window=net.window, offset=net.window // 2)
    assert (pre.window, pre.n_channels) == (net.window, net.channels)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-s{seed}.onnx"
    inits = {}

    def const(key: str, v: np.ndarray) -> str:
        inits[key] = v
        return key

    nodes = [helper.make_node("Transpose", ["window"], ["x0"], perm=[0, 2, 1])]
    x = "x0"
    for i, (w, b) in enumerate(net.convs):
        nodes += [helper.make_node("Conv", [x, const(f"w{i}", w.transpose(2, 1, 0)), const(f"b{i}", b)], [f"c{i}"]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
                  helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2], strides=[2])]
        x = f"p{i}"
    n, c = net.positions(), net.convs[-1][0].shape[2]
    (w1, b1), (w2, b2) = net.dense
    nodes += [helper.make_node("Transpose", [x], ["t"], perm=[0, 2, 1]),
              helper.make_node("Reshape", ["t", const("shape", np.array([-1, n * c], np.int64))], ["flat"]),
              helper.make_node("Gemm", ["flat", const("d1", w1), const("e1", b1)], ["h"]),
              helper.make_node("Relu", ["h"], ["hr"]),
              helper.make_node("Gemm", ["hr", const("d2", w2), const("e2", b2)], ["z"]),
              helper.make_node("Sigmoid", ["z"], ["prob"])]
    graph = helper.make_graph(nodes, "tiny_window",
                              [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["N", net.window, net.channels])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    meta = ModelMetadata(preprocessing=pre, model_id=f"{name}/s{seed}", seed=seed)
    _save(graph, path, {METADATA_KEY: meta.to_json()})
    if sliding:
        write_sliding(path, net, pre)
    return path


def write_sliding(member: Path, net: TinyNet, pre: Preprocessing, record: dict | None = None) -> Path:
    """The sliding graph of a valid-padding TinyNet: (1, channels, L) -> (1, 1, L - window + 1)."""
    inits = {}

    def const(key: str, v: np.ndarray) -> str:
        inits[key] = v
        return key

    nodes, x, d = [], "segment", 1
    for i, (w, b) in enumerate(net.convs):
        nodes += [helper.make_node("Conv", [x, const(f"w{i}", w.transpose(2, 1, 0)), const(f"b{i}", b)], [f"c{i}"],
                                   dilations=[d]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
                  helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2], strides=[1], dilations=[d])]
        x, d = f"p{i}", 2 * d
    n, c = net.positions(), net.convs[-1][0].shape[2]
    (w1, b1), (w2, b2) = net.dense
    nodes += [helper.make_node("Conv", [x, const("d1", w1.reshape(n, c, -1).transpose(2, 1, 0)), const("e1", b1)],
                               ["h"], dilations=[d]),
              helper.make_node("Relu", ["h"], ["hr"]),
              helper.make_node("Conv", ["hr", const("d2", w2.T[:, :, None]), const("e2", b2)], ["z"]),
              helper.make_node("Sigmoid", ["z"], ["prob"])]
    graph = helper.make_graph(nodes, "tiny_sliding",
                              [helper.make_tensor_value_info("segment", TensorProto.FLOAT, [1, net.channels, "L"])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1, "S"])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    info = {"format_version": SLIDING_FORMAT, "member_sha256": hashlib.sha256(member.read_bytes()).hexdigest(),
            "window": pre.window, "offset": pre.offset, "channels": pre.n_channels, "centre_level": 0.0}
    info.update(record or {})
    return _save(graph, sliding_path(member), {SLIDING_KEY: json.dumps(info)})
