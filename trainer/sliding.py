"""The sliding form of a stella-family CNN: the network applied once to a whole segment, exactly.

A member ``X.onnx`` runs one 200-cadence window at a time. Neighbouring windows share all but one cadence,
so almost all of that arithmetic is repeated. :func:`sliding_graph` rewrites the same weights into one ONNX
graph ``X.sliding.onnx`` that takes a whole segment ``(1, channels, L)`` and returns the probability of every
window start ``(1, 1, L - window + 1)`` (shift-and-stitch / "a trous"):

* each convolution runs over the whole segment; a max-pool of size P becomes stride 1 with the current
  dilation, and every later layer's dilation is multiplied by P;
* the dense layer over the flattened features is a convolution whose kernel spans the flattened positions
  (dilation 4 in stella's network), later dense layers are 1x1 convolutions.

``same`` padding is made exact. Inside a window a ``same`` convolution sees zeros beyond the window's own
edges, which the segment-wide convolution does not. The builder tracks, layer by layer, which window
positions those zeros reach ("edge positions": conv1 outputs 0-2 and 197-199, pooled-2 positions 0, 1, 48,
49 in stella's network). Interior positions come from the segment-wide tensors. The edge positions of each
window side come from a small per-window network on the window's first (last) few cadences (13 for stella),
evaluated for every window start in the same ONNX call: the cadences are unfolded into a (channels, rows,
starts) tensor by one convolution that also applies the first layer (its taps on the window's padding left
out), then the later layers run as 2-D convolutions over (window position, window start) with zero padding on
the window's outer side only. The dense layer adds both parts before its activation. ``valid`` networks have
no edge positions. Every rule here is exact algebra; only the float32 summation order differs from the
per-window graph.

Centring: the graph first subtracts the normalised baseline from the flux channel (``pad_value`` of the
preprocessing: 1.0 for median-normalised flux) and folds each first-layer tap's share into the bias, so
float32 sums carry the signal, not the baseline. On stella's models this brings the sliding result about 10x
closer to float64 than the per-window graph (``bench/bench_sliding.py --study numerics``), so it is on by
default.

The trainer builds the graph from the Keras weights and checks it (:func:`check_sliding`) against the
per-window ONNX file, Keras and a float64 evaluation on real, random and adversarial segments before
:func:`write_sliding` writes it beside the member. Models that normalise each window on its own
(``median+window_noise``) have no sliding form: a cadence has a different input value in every window.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from flarelight.runtime.atomic import atomic_path
from flarelight.runtime.errors import ModelFileError
from flarelight.runtime.metadata import METADATA_KEY, ModelMetadata
from flarelight.runtime.sliding import SLIDING_FORMAT, SLIDING_KEY, file_sha256, sliding_path

#: largest |sliding - reference| probability accepted at build time, against the per-window ONNX, Keras and
#: float64 (the acceptance bar on real light curves is 2e-4; float32 graphs agree to ~1e-5)
SLIDING_ATOL = 1e-4
OPSET = 17
_INT64_MAX = np.iinfo(np.int64).max


class SlidingUnsupportedError(ModelFileError):
    """The network has a layer the sliding builder does not know how to rewrite."""


class SlidingMismatchError(ModelFileError):
    """The sliding graph disagrees with its references beyond the tolerance; it is not written."""


class SlidingNotWrittenWarning(UserWarning):
    """A member was written without its sliding graph (the runtime runs it per window)."""


# ----------------------------------------------------------------------------- the network, as plain arrays
@dataclass(frozen=True)
class Conv:
    """Conv1D, stride 1: ``w`` (kernel, in, out) as Keras stores it, ``b`` (out,), padding "same"/"valid"."""

    w: np.ndarray
    b: np.ndarray
    padding: str = "same"
    activation: str = "relu"

    @property
    def kernel(self) -> int:
        return int(self.w.shape[0])

    @property
    def pads(self) -> tuple[int, int]:
        """Zeros before and after the input (Keras/TensorFlow "same": the extra one goes after)."""
        if self.padding == "valid":
            return 0, 0
        total = self.kernel - 1
        return total // 2, total - total // 2


@dataclass(frozen=True)
class Pool:
    """MaxPooling1D with stride = pool size, "valid" (a trailing odd position is dropped)."""

    size: int = 2


@dataclass(frozen=True)
class Dense:
    """Dense: ``w`` (in, out), ``b`` (out,). The first one reads the channels-last flattened features."""

    w: np.ndarray
    b: np.ndarray
    activation: str = "relu"


@dataclass(frozen=True)
class Network:
    """A stella-family CNN: ``features`` (Conv and Pool, first a Conv), Flatten, ``dense`` (last: 1 sigmoid)."""

    window: int
    channels: int
    features: tuple = field(default_factory=tuple)
    dense: tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.features or not isinstance(self.features[0], Conv):
            raise SlidingUnsupportedError("the network must start with a convolution")
        n, c = self.window, self.channels
        for layer in self.features:
            if isinstance(layer, Conv):
                if layer.w.ndim != 3 or layer.w.shape[1] != c or layer.b.shape != (layer.w.shape[2],):
                    raise SlidingUnsupportedError(f"conv weights {layer.w.shape} do not fit {c} input channels")
                if layer.padding not in ("same", "valid") or layer.activation not in ("relu", "linear"):
                    raise SlidingUnsupportedError(f"conv padding {layer.padding!r} / activation {layer.activation!r}")
                lo, hi = layer.pads
                n, c = n + lo + hi - layer.kernel + 1, layer.w.shape[2]
            elif isinstance(layer, Pool):
                n //= layer.size
            else:
                raise SlidingUnsupportedError(f"unknown feature layer {layer!r}")
            if n < 1:
                raise SlidingUnsupportedError(f"window {self.window} is too short for these layers")
        width = n * c
        for k, d in enumerate(self.dense):
            if d.w.shape[0] != width or d.b.shape != (d.w.shape[1],):
                raise SlidingUnsupportedError(f"dense layer {k}: weights {d.w.shape}, expected ({width}, units)")
            if d.activation not in ("relu", "linear", "sigmoid"):
                raise SlidingUnsupportedError(f"dense activation {d.activation!r}")
            width = d.w.shape[1]
        if not self.dense or width != 1 or self.dense[-1].activation != "sigmoid":
            raise SlidingUnsupportedError("the network must end in Dense(1, sigmoid)")

    @property
    def feature_shape(self) -> tuple[int, int]:
        """(positions, channels) of the features the first dense layer reads."""
        return _feature_shape(self.window, self.channels, self.features)

    def flops_per_window(self) -> int:
        """Multiply-adds x 2 of one per-window evaluation (convolutions and dense layers)."""
        n, c, total = self.window, self.channels, 0
        for layer in self.features:
            if isinstance(layer, Conv):
                lo, hi = layer.pads
                n = n + lo + hi - layer.kernel + 1
                total += 2 * n * layer.w.size
                c = layer.w.shape[2]
            else:
                n //= layer.size
        return total + sum(2 * d.w.size for d in self.dense)


def network_from_keras(model) -> Network:
    """The :class:`Network` of a Keras model of the stella family (see ``flarelight.trainer.cnn``).

    Raises
    ------
    SlidingUnsupportedError
        A layer other than Conv1D (stride 1, no dilation), MaxPooling1D (stride = size), Dropout, Flatten, Dense.
    """
    shape = tuple(model.input_shape)
    if len(shape) != 3:
        raise SlidingUnsupportedError(f"model input {shape}: expected (None, window, channels)")
    features: list = []
    dense: list = []
    flat = False
    for layer in model.layers:
        kind = type(layer).__name__
        cfg = layer.get_config()
        if kind in ("InputLayer", "Dropout"):
            continue
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise SlidingUnsupportedError(f"{layer.name}: data_format {cfg['data_format']!r}")
        if kind == "Conv1D" and not flat:
            if tuple(cfg["strides"]) != (1,) or tuple(cfg["dilation_rate"]) != (1,) or cfg.get("groups", 1) != 1:
                raise SlidingUnsupportedError(f"{layer.name}: strides/dilation/groups other than 1")
            w, b = (np.asarray(v, np.float32) for v in layer.get_weights())
            features.append(Conv(w, b, cfg["padding"], cfg["activation"]))
        elif kind == "MaxPooling1D" and not flat:
            size = tuple(cfg["pool_size"])[0]
            if tuple(cfg["strides"] or (size,))[0] != size or cfg["padding"] != "valid":
                raise SlidingUnsupportedError(f"{layer.name}: pooling with stride != size or same padding")
            features.append(Pool(int(size)))
        elif kind == "Flatten" and not flat:
            flat = True
        elif kind == "Dense" and flat:
            w, b = (np.asarray(v, np.float32) for v in layer.get_weights())
            dense.append(Dense(w, b, cfg["activation"]))
        else:
            raise SlidingUnsupportedError(f"{layer.name}: {kind} is not part of the stella architecture family")
    return Network(int(shape[1]), int(shape[2]), tuple(features), tuple(dense))


def example_network(window: int = 200, channels: int = 1, *, filters: Sequence[int] = (16, 64),
                    kernels: Sequence[int] = (7, 3), dense: int = 32, padding: str = "valid",
                    seed: int = 0) -> Network:
    """A stella-shaped network with random (Glorot-uniform) weights, for tests and benches.

    The default is the "sliding-ready" test model: stella's sizes with ``valid`` convolutions.
    The output bias centres an all-ones window near p = 0.5 so probabilities are not saturated.
    """
    rng = np.random.default_rng(seed)

    def glorot(fan_in: int, fan_out: int, shape: tuple) -> np.ndarray:
        lim = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-lim, lim, shape).astype(np.float32)

    feats: list = []
    c = channels
    for f, k in zip(filters, kernels):
        feats.append(Conv(glorot(k * c, k * f, (k, c, f)), rng.normal(0, 0.05, f).astype(np.float32), padding))
        feats.append(Pool(2))
        c = f
    n, c = _feature_shape(window, channels, feats)
    w1 = glorot(n * c, dense, (n * c, dense))
    w2 = glorot(dense, 1, (dense, 1))
    net = Network(window, channels, tuple(feats), (Dense(w1, np.zeros(dense, np.float32), "relu"),
                                                   Dense(w2, np.zeros(1, np.float32), "sigmoid")))
    # an all-ones window scores 0.5; windows with 1% noise spread over logits of std ~1.5
    probe = np.ones((31, window, channels))
    probe[1:, :, 0] += rng.normal(0, 1e-2, (30, window))
    z = _logits(net, probe)
    gain = 1.5 / max(float(np.std(z[1:])), 1e-6)
    return Network(window, channels, tuple(feats),
                   (net.dense[0], Dense((w2 * gain).astype(np.float32), np.array([-gain * z[0]], np.float32), "sigmoid")))


def _feature_shape(window: int, channels: int, feats: list) -> tuple[int, int]:
    n, c = window, channels
    for layer in feats:
        if isinstance(layer, Conv):
            lo, hi = layer.pads
            n, c = n + lo + hi - layer.kernel + 1, layer.w.shape[2]
        else:
            n //= layer.size
    return n, c


# ----------------------------------------------------------------------------- float64 reference
def _features(net: Network, x: np.ndarray) -> np.ndarray:
    from numpy.lib.stride_tricks import sliding_window_view

    for layer in net.features:
        if isinstance(layer, Conv):
            lo, hi = layer.pads
            xp = np.pad(x, ((0, 0), (lo, hi), (0, 0)))
            m, c, k = xp.shape[0], xp.shape[2], layer.kernel
            cols = sliding_window_view(xp, k, axis=1)  # (m, n_out, c, k), im2col as one float64 GEMM
            n_out = cols.shape[1]
            wm = layer.w.astype(np.float64).transpose(1, 0, 2).reshape(c * k, -1)
            x = (cols.reshape(m * n_out, c * k) @ wm).reshape(m, n_out, -1) + layer.b
            if layer.activation == "relu":
                x = np.maximum(x, 0.0)
        else:
            n = x.shape[1] // layer.size
            x = x[:, : n * layer.size].reshape(x.shape[0], n, layer.size, x.shape[2]).max(axis=2)
    return x


def _logits(net: Network, windows: np.ndarray) -> np.ndarray:
    z = _features(net, np.asarray(windows, np.float64)).reshape(len(windows), -1)
    for d in net.dense[:-1]:
        z = z @ d.w.astype(np.float64) + d.b
        z = np.maximum(z, 0.0) if d.activation == "relu" else z
    d = net.dense[-1]
    return (z @ d.w.astype(np.float64) + d.b)[:, 0]


def _head(net: Network, z: np.ndarray) -> np.ndarray:
    """The dense layers on flattened float64 features (m, positions * channels) -> (m,) probabilities."""
    for d in net.dense:
        z = z @ d.w.astype(np.float64) + d.b
        if d.activation == "relu":
            z = np.maximum(z, 0.0)
        elif d.activation == "sigmoid":
            with np.errstate(over="ignore"):
                z = 1.0 / (1.0 + np.exp(-z))
    return z[:, 0]


def reference_probabilities(net: Network, windows: np.ndarray, batch: int = 256) -> np.ndarray:
    """The network in float64 numpy, one window at a time: windows (m, window, channels) -> (m,) probabilities."""
    windows = np.asarray(windows)
    out = np.empty(len(windows), np.float64)
    for a in range(0, len(windows), batch):
        z = _features(net, windows[a:a + batch].astype(np.float64)).reshape(min(batch, len(windows) - a), -1)
        out[a:a + batch] = _head(net, z)
    return out


def reference_segment(net: Network, segment: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Float64 probabilities of every window of ``segment`` (channels, L): ``reference_probabilities`` of
    ``segment[:, s : s + window]`` for each start ``s``, several times faster on long segments.

    Each window's features are built position by position as in :func:`reference_probabilities`: a position
    whose receptive field lies inside the window is read from a float64 evaluation of that layer over the whole
    segment (the identical sum), every other position (:func:`edge_positions`) is computed from the window's
    own previous layer with its zero padding. Used as the float64 reference of long light curves (benches).
    """
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.ascontiguousarray(np.asarray(segment, np.float64).T)  # (L, channels)
    n_start = x.shape[0] - net.window + 1
    if n_start < 1:
        return np.empty(0)
    wide, cur, step, lead = [], x, 1, 0  # segment-wide layers: window position p of start s at s + step*p - lead
    for layer in net.features:
        if isinstance(layer, Conv):
            k, n_out = layer.kernel, cur.shape[0] - step * (layer.kernel - 1)
            cols = np.stack([cur[step * j: step * j + n_out] for j in range(k)], axis=1)  # (n_out, k, c)
            cur = cols.reshape(n_out, -1) @ layer.w.astype(np.float64).reshape(-1, layer.w.shape[2]) + layer.b
            cur = np.maximum(cur, 0.0) if layer.activation == "relu" else cur
            lead += step * layer.pads[0]
        else:
            n_out = cur.shape[0] - step * (layer.size - 1)
            cur = np.max(np.stack([cur[step * j: step * j + n_out] for j in range(layer.size)]), axis=0)
            step *= layer.size
        wide.append((cur, step, lead))
    edges = edge_positions(net)
    sizes = [net.window] + [_feature_shape(net.window, net.channels, net.features[:i + 1])[0]
                            for i in range(len(net.features))]
    # positions each layer must produce per window: all of the last; before it, what the next layer's edge
    # positions read (interior positions are read from the segment-wide layers directly)
    need: list[list[int]] = [list(range(sizes[-1]))]
    for i in range(len(net.features) - 1, 0, -1):
        layer, n_in = net.features[i], sizes[i]
        reads = set()
        for p in edges[i]:
            reads.update(range(p - layer.pads[0], p - layer.pads[0] + layer.kernel) if isinstance(layer, Conv)
                         else range(layer.size * p, layer.size * p + layer.size))
        need.insert(0, sorted(q for q in reads if 0 <= q < n_in))
    windows = sliding_window_view(x, net.window, axis=0).transpose(0, 2, 1)  # (starts, window, channels), a view
    out = np.empty(n_start, np.float64)
    for a in range(0, n_start, batch):
        starts = np.arange(a, min(a + batch, n_start))
        h = windows[starts]  # this layer's input: an array (m, positions, c) or {position: (m, c)}
        for i, (layer, (seg_out, step, lead), edge) in enumerate(zip(net.features, wide, edges)):
            pos = np.array(need[i], np.int64)
            inner = [k for k, p in enumerate(need[i]) if p not in edge]
            new = np.empty((len(starts), pos.size, seg_out.shape[1]))
            new[:, inner] = seg_out[starts[:, None] + step * pos[None, inner] - lead]

            def read(q: int) -> np.ndarray:
                return h[:, q] if isinstance(h, np.ndarray) else h[q]

            for k, p in enumerate(need[i]):
                if p not in edge:
                    continue
                if isinstance(layer, Conv):
                    acc = np.zeros((len(starts), layer.w.shape[2])) + layer.b
                    for j in range(layer.kernel):
                        q = p + j - layer.pads[0]
                        if 0 <= q < sizes[i]:
                            acc += read(q) @ layer.w[j].astype(np.float64)
                    new[:, k] = np.maximum(acc, 0.0) if layer.activation == "relu" else acc
                else:
                    new[:, k] = np.max([read(layer.size * p + t) for t in range(layer.size)], axis=0)
            h = new if i == len(net.features) - 1 else {p: new[:, k] for k, p in enumerate(need[i])}
        out[a:a + len(starts)] = _head(net, h.reshape(len(starts), -1))
    return out


# ----------------------------------------------------------------------------- per-window ONNX (no TensorFlow)
def window_graph(net: Network, input_name: str = "window"):
    """The per-window ONNX graph of ``net`` built with onnx.helper: input (N, window, channels) -> (N, 1).

    The same layout as the tf2onnx export of the Keras model; used where there is no Keras model (tests, benches).
    """
    from onnx import TensorProto, helper, numpy_helper

    b = _Builder()
    x = b.node("Transpose", [input_name], perm=[0, 2, 1])
    for layer in net.features:
        if isinstance(layer, Conv):
            lo, hi = layer.pads
            x = b.node("Conv", [x, b.const(layer.w.transpose(2, 1, 0)), b.const(layer.b)], pads=[lo, hi])
            x = b.node("Relu", [x]) if layer.activation == "relu" else x
        else:
            x = b.node("MaxPool", [x], kernel_shape=[layer.size], strides=[layer.size])
    n, c = net.feature_shape
    x = b.node("Transpose", [x], perm=[0, 2, 1])
    x = b.node("Reshape", [x, b.const(np.array([-1, n * c], np.int64))])
    for d in net.dense:
        x = b.node("Add", [b.node("MatMul", [x, b.const(d.w)]), b.const(d.b)])
        if d.activation != "linear":
            x = b.node({"relu": "Relu", "sigmoid": "Sigmoid"}[d.activation], [x])
    b.nodes.append(helper.make_node("Identity", [x], ["prob"]))
    graph = helper.make_graph(b.nodes, "flarelight_window",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", net.window, net.channels])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in b.inits.items()])
    return _model(graph)


# ----------------------------------------------------------------------------- the sliding graph
class _Builder:
    """Collects ONNX nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.count = 0
        self.flops = 0  # multiply-adds x 2 per window start, of the Conv nodes

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, value: np.ndarray) -> str:
        arr = np.asarray(value)
        arr = arr.astype(np.float32) if arr.dtype.kind == "f" else arr
        key = self.name("c")
        self.inits[key] = np.ascontiguousarray(arr)
        return key

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out


@dataclass
class _Level:
    """A layer's output as a segment-wide tensor ``name`` (1, channels, L - shrink).

    Window ``s``'s position ``p`` (where its receptive field holds no padding) is at index ``s + step * p - lead``.
    """

    name: str
    channels: int
    positions: int
    step: int
    lead: int
    shrink: int


def edge_positions(net: Network) -> list[set[int]]:
    """For each feature layer's output, the window positions the window's own ``same`` padding reaches."""
    n, edge, out = net.window, set(), []
    for layer in net.features:
        if isinstance(layer, Conv):
            lo, hi = layer.pads
            n_out = n + lo + hi - layer.kernel + 1
            edge = {p for p in range(n_out)
                    if any(not (0 <= q < n) or q in edge for q in range(p - lo, p - lo + layer.kernel))}
            n = n_out
        else:
            n //= layer.size
            edge = {q for q in range(n) if any(p in edge for p in range(layer.size * q, layer.size * q + layer.size))}
        out.append(edge)
    return out


class _SlidingBuilder(_Builder):
    def __init__(self, net: Network, level: float) -> None:
        super().__init__()
        self.net = net
        self.level = float(level)

    def ints(self, *values: int) -> str:
        return self.const(np.array(values, np.int64))

    def fetch(self, lv: _Level, p: int, extra: int = 0) -> str:
        """Position ``p`` of ``lv`` for every window start (plus ``extra`` more samples): a Slice."""
        start = lv.step * p - lv.lead
        end = start + extra - (self.net.window - 1) + lv.shrink  # relative to the tensor's end (<= 0)
        if start < 0 or end > 0:
            raise AssertionError(f"position {p} reaches outside the segment tensor ({start}, {end})")
        return self.node("Slice", [lv.name, self.ints(start), self.ints(end if end < 0 else _INT64_MAX), self.ints(2)])

    def shift_bias(self, w: np.ndarray, first: bool) -> np.ndarray:
        """What centring the flux channel (x - level) takes from a first-layer tap set ``w`` (taps, in, out)."""
        return self.level * w[:, 0, :].astype(np.float64).sum(axis=0) if first and self.level else 0.0

    def act(self, x: str, activation: str) -> str:
        op = {"relu": "Relu", "sigmoid": "Sigmoid"}.get(activation)
        return self.node(op, [x]) if op else x

    # -- the segment-wide chain (every position whose receptive field stays inside the window)
    def slide(self, x: str) -> _Level:
        net = self.net
        lv = _Level(x, net.channels, net.window, 1, 0, 0)
        for i, layer in enumerate(net.features):
            if isinstance(layer, Conv):
                lo, hi = layer.pads
                bias = layer.b.astype(np.float64) + self.shift_bias(layer.w, i == 0)
                y = self.node("Conv", [lv.name, self.const(layer.w.transpose(2, 1, 0)), self.const(bias)],
                              dilations=[lv.step], kernel_shape=[layer.kernel])
                self.flops += 2 * layer.w.size
                lv = _Level(self.act(y, layer.activation), layer.w.shape[2], lv.positions + lo + hi - layer.kernel + 1,
                            lv.step, lv.lead + lv.step * lo, lv.shrink + lv.step * (layer.kernel - 1))
            else:
                # max over the pool's taps: shifted slices of one tensor (onnxruntime's dilated MaxPool is slower)
                span = lv.step * (layer.size - 1)
                y = self.node("Max", [self.node("Slice", [lv.name, self.ints(lv.step * t),
                                                          self.ints(lv.step * t - span if t * lv.step < span else _INT64_MAX),
                                                          self.ints(2)])
                                      for t in range(layer.size)])
                lv = _Level(y, lv.channels, lv.positions // layer.size, lv.step * layer.size, lv.lead,
                            lv.shrink + lv.step * (layer.size - 1))
        return lv

    # -- one window edge: the per-window network on the window's first (or last) few cadences
    def edge_region(self, x: str, need: tuple[int, int], w_dense: np.ndarray) -> str:
        """Dense-layer contribution (1, units, starts) of feature positions ``need`` (lo, hi) near one window edge.

        The region's cadences are unfolded into a (1, channels, rows, starts) tensor and run through the
        per-window layers as 2-D convolutions over (window position, window start), with the window's zero
        padding on the outer side only, so every start's edge features come out exactly as in its own window.
        """
        net = self.net
        sizes, pads = [], []  # backward: the positions each layer needs, and the padding it sees
        lo, hi = need
        n_in = [net.window]
        for layer in net.features[:-1]:
            n_in.append(n_in[-1] + sum(layer.pads) - layer.kernel + 1 if isinstance(layer, Conv)
                        else n_in[-1] // layer.size)
        for layer, n in zip(reversed(net.features), reversed(n_in)):
            if isinstance(layer, Conv):
                pl = layer.pads[0]
                lo, hi = lo - pl, hi - pl + layer.kernel - 1
                pads.append((max(0, -lo), max(0, hi - (n - 1))))
                lo, hi = max(lo, 0), min(hi, n - 1)
            else:
                lo, hi = layer.size * lo, layer.size * hi + layer.size - 1
                pads.append(None)
            sizes.append((lo, hi))
        pads.reverse()
        # first layer: one 1-D convolution over the region's cadences whose output channels are (filter, row),
        # taps on the window's padding left out and their centring share folded into a per-row bias
        first, (r_lo, r_hi) = net.features[0], sizes[-1]
        k, pl, c = first.kernel, first.pads[0], net.channels
        lo1 = r_lo - pads[0][0] + pl
        n_out = r_hi + pads[0][1] - k + 1 - (r_lo - pads[0][0]) + 1
        real, c_out = r_hi - r_lo + 1, first.w.shape[2]
        kern = np.zeros((c_out, n_out, c, real), np.float32)
        bias = np.empty((c_out, n_out), np.float64)
        for r in range(n_out):
            taps = [j for j in range(k) if 0 <= lo1 + r + j - pl < net.window]
            for j in taps:
                kern[:, r, :, lo1 + r + j - pl - r_lo] = first.w[j].T
            bias[:, r] = first.b + self.shift_bias(first.w[taps], True)
        y = self.node("Conv", [self.fetch(_Level(x, c, net.window, 1, 0, 0), r_lo, extra=real - 1),
                               self.const(kern.reshape(c_out * n_out, c, real)), self.const(bias.reshape(-1))],
                      kernel_shape=[real])
        self.flops += 2 * kern.size
        y = self.node("Reshape", [self.act(y, first.activation), self.ints(1, c_out, n_out, -1)])
        pos = (lo1, lo1 + n_out - 1)
        for layer, pad in zip(net.features[1:], pads[1:]):
            if isinstance(layer, Conv):
                top, bottom = pad
                n_out = pos[1] - pos[0] + 1 + top + bottom - layer.kernel + 1
                p0 = pos[0] - top + layer.pads[0]  # window position of the first output row
                y = self.node("Conv", [y, self.const(layer.w.transpose(2, 1, 0)[..., None]), self.const(layer.b)],
                              pads=[top, 0, bottom, 0], kernel_shape=[layer.kernel, 1])
                self.flops += 2 * n_out * layer.w.size
                y = self.act(y, layer.activation)
                pos = (p0, p0 + n_out - 1)
            else:
                y = self.node("MaxPool", [y], kernel_shape=[layer.size, 1], strides=[layer.size, 1])
                pos = (pos[0] // layer.size, (pos[1] + 1) // layer.size - 1)
        if pos[0] > need[0] or pos[1] < need[1]:
            raise AssertionError(f"edge region computes positions {pos}, needs {need}")
        if pos != need:
            y = self.node("Slice", [y, self.ints(need[0] - pos[0]), self.ints(need[1] - pos[0] + 1), self.ints(2)])
        k = need[1] - need[0] + 1
        wd = w_dense[need[0]:need[1] + 1]  # (k, channels, units)
        y = self.node("Conv", [y, self.const(wd.transpose(2, 1, 0)[..., None])], kernel_shape=[k, 1])
        self.flops += 2 * wd.size
        return self.node("Squeeze", [y, self.ints(2)])

    def build(self, input_name: str):
        from onnx import TensorProto, helper, numpy_helper

        net = self.net
        x = input_name
        if self.level:
            shift = np.zeros((1, net.channels, 1), np.float32)
            shift[0, 0, 0] = self.level
            x = self.node("Sub", [x, self.const(shift)])
        lv = self.slide(x)
        n, c = lv.positions, lv.channels
        edge = edge_positions(net)[-1]
        left = [p for p in edge if p < n / 2]
        right = [p for p in edge if p >= n / 2]
        a = max(left) + 1 if left else 0  # interior positions: [a, b)
        b = min(right) if right else n
        if any(p in edge for p in range(a, b)):
            raise AssertionError(f"edge positions {sorted(edge)} are not at the window's ends")
        d0 = net.dense[0]
        wd = d0.w.reshape(n, c, -1)
        parts = []
        if b > a:
            src = self.fetch(lv, a, extra=lv.step * (b - a - 1))
            parts.append(self.node("Conv", [src, self.const(wd[a:b].transpose(2, 1, 0)), self.const(d0.b)],
                                   dilations=[lv.step], kernel_shape=[b - a]))
            self.flops += 2 * wd[a:b].size
        if left:
            parts.append(self.edge_region(x, (0, a - 1), wd))
        if right:
            parts.append(self.edge_region(x, (b, n - 1), wd))
        z = parts[0] if len(parts) == 1 else self.node("Sum", parts)
        if b <= a:
            z = self.node("Add", [z, self.const(d0.b.reshape(1, -1, 1))])
        z = self.act(z, d0.activation)
        for d in net.dense[1:]:
            z = self.node("Conv", [z, self.const(d.w.T[:, :, None]), self.const(d.b)], kernel_shape=[1])
            self.flops += 2 * d.w.size
            z = self.act(z, d.activation)
        self.nodes.append(helper.make_node("Identity", [z], ["prob"]))
        graph = helper.make_graph(
            self.nodes, "flarelight_sliding",
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, net.channels, "L"])],
            [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1, "S"])],
            initializer=[numpy_helper.from_array(v, k) for k, v in self.inits.items()])
        return _model(graph)


def _model(graph):
    from onnx import checker, helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="flarelight")
    model.ir_version = 8
    checker.check_model(model)
    return model


def sliding_graph(net: Network, *, centre: float = 1.0, input_name: str = "segment"):
    """The sliding ONNX graph of ``net``: input (1, channels, L >= window) -> (1, 1, L - window + 1).

    Output ``s`` is the probability of the window ``segment[:, s : s + window]``. ``centre``: the level the
    graph subtracts from the flux channel first (the normalised baseline: 1.0 for median-normalised flux; 0 or
    False: none), with each first-layer tap's share folded into the bias.

    Returns
    -------
    (onnx.ModelProto, int)
        The graph and its cost in FLOPs (2 x multiply-adds) per window start.
    """
    b = _SlidingBuilder(net, float(centre))
    proto = b.build(input_name)
    return proto, b.flops


# ----------------------------------------------------------------------------- checking
def check_segments(window: int, channels: int, *, real: Sequence[np.ndarray] = (), seed: int = 0) -> list[np.ndarray]:
    """Segments (channels, L) to check a sliding graph on: real, realistic, random and adversarial.

    ``real``: normalised flux arrays (or (m, window, channels) real windows, stitched end to end). Two-channel
    segments are padded at both ends the way the runtime pads a segment (flux 1, flag 0), and some random
    ones carry zero flags inside too.
    """
    from flarelight.runtime.simulate import simulate_lightcurve

    rng = np.random.default_rng(seed)
    flux: list[np.ndarray] = []
    budget = 4 * window  # real cadences checked: enough to cover every window position several times
    for r in real:
        r = np.asarray(r, np.float64)
        r = (r[..., 0] if r.ndim == 3 else r).reshape(-1)[:budget]
        budget -= r.size
        if r.size >= window:
            flux.append(r)
    lc, _ = simulate_lightcurve(n_days=3.0, seed=seed, n_flares=4, n_holes=0, gap_days=(10.0, 10.0))
    flux.append(lc.flux[:1500] / np.nanmedian(lc.flux))
    for noise in (1e-4, 1e-3, 1e-2, 5e-2):  # noise around 1 with flare-like spikes
        x = 1.0 + rng.normal(0, noise, window + 200)
        for c in rng.integers(0, x.size, 6):
            x[c:] += rng.uniform(0.005, 0.5) * np.exp(-np.arange(x.size - c) / rng.uniform(1, 20))
        flux.append(x)
    half = window // 2
    flux += [np.ones(window + 40), np.zeros(window + 3), np.r_[np.ones(half + 50), 1.1 * np.ones(window)],
             np.full(window, 50.0), np.full(window + 1, -3.0), 1.0 + 0.3 * (-1.0) ** np.arange(window + 20),
             np.r_[np.ones(window), [40.0], np.ones(window)]]
    out = []
    for k, f in enumerate(flux):
        f = f.astype(np.float32)
        if channels == 1:
            out.append(f[None])
            continue
        flag = np.ones_like(f)
        if k % 3 == 2:
            flag[rng.random(f.size) < 0.05] = 0.0
        lo, hi = half, window - 1 - half
        seg = np.stack([np.r_[np.ones(lo), f, np.ones(hi)], np.r_[np.zeros(lo), flag, np.zeros(hi)]])
        out.append(seg.astype(np.float32))
    return out


@dataclass
class SlidingCheck:
    """Largest |sliding - reference| probability over the check segments, by reference."""

    n_windows: int
    vs_windows: float
    vs_float64: float | None
    vs_keras: float | None
    windows_vs_float64: float | None

    def worst(self) -> float:
        return max(v for v in (self.vs_windows, self.vs_float64, self.vs_keras) if v is not None)

    def as_dict(self) -> dict:
        return {"n_windows": self.n_windows, "vs_windows": self.vs_windows, "vs_float64": self.vs_float64,
                "vs_keras": self.vs_keras, "windows_vs_float64": self.windows_vs_float64}


def check_sliding(net: Network | None, sliding_proto, window_model, *, keras_model=None,
                  segments: Sequence[np.ndarray] | None = None) -> SlidingCheck:
    """Run the sliding graph on check segments and compare every window start with its references.

    Parameters
    ----------
    net : Network or None
        For the float64 reference (None: no float64 comparison; then ``segments`` is required).
    sliding_proto : path or onnx.ModelProto
    window_model : path or onnx.ModelProto
        The member's per-window graph.
    keras_model : keras.Model, optional
    segments : list of (channels, L) arrays, optional
        Default :func:`check_segments`.
    """
    import onnxruntime as ort

    def session(m):
        src = str(m) if isinstance(m, (str, os.PathLike)) else m.SerializeToString()
        return ort.InferenceSession(src, providers=["CPUExecutionProvider"])

    slide, per_window = session(sliding_proto), session(window_model)
    s_in, w_in = slide.get_inputs()[0].name, per_window.get_inputs()[0]
    window = int(w_in.shape[1])
    segments = check_segments(net.window, net.channels) if segments is None else segments
    got, win, ref, ker = [], [], [], []
    for seg in segments:
        seg = np.ascontiguousarray(seg, np.float32)
        got.append(slide.run(None, {s_in: seg[None]})[0].reshape(-1))
        windows = np.lib.stride_tricks.sliding_window_view(seg, window, axis=1).transpose(1, 2, 0)
        windows = np.ascontiguousarray(windows)
        win.append(per_window.run(None, {w_in.name: windows})[0].reshape(-1))
        if net is not None:
            ref.append(reference_probabilities(net, windows))
        if keras_model is not None:
            ker.append(np.concatenate([np.asarray(keras_model(windows[a:a + 1024], training=False)).reshape(-1)
                                       for a in range(0, len(windows), 1024)]))
    g, w = (np.concatenate(v).astype(np.float64) for v in (got, win))
    r = np.concatenate(ref).astype(np.float64) if ref else None

    def dmax(a: np.ndarray, b: np.ndarray) -> float:
        d = np.abs(a - b)
        return float("inf") if np.isnan(d).any() else float(d.max())

    return SlidingCheck(n_windows=int(g.size), vs_windows=dmax(g, w), vs_float64=dmax(g, r) if ref else None,
                        vs_keras=dmax(g, np.concatenate(ker).astype(np.float64)) if ker else None,
                        windows_vs_float64=dmax(w, r) if ref else None)


# ----------------------------------------------------------------------------- writing
def _no_sliding_reason(meta: ModelMetadata) -> str:
    pre = meta.preprocessing
    if not pre.per_cadence:
        return (f"normalisation {pre.normalisation!r} rescales each window on its own, so a cadence has a "
                "different input in every window and no work is shared; it runs per window")
    return ""


def write_sliding(member_path: str | os.PathLike, net: Network | None = None, *, keras_model=None,
                  real: Sequence[np.ndarray] = (), atol: float = SLIDING_ATOL, centre: bool = True,
                  strict: bool = False) -> tuple[Path | None, str]:
    """Build, check and write ``X.sliding.onnx`` beside the member ``X.onnx`` (already written).

    The network comes from ``net`` or ``keras_model``. The graph is checked (:func:`check_sliding`) against
    the member file, Keras (if given) and float64 on :func:`check_segments` (with ``real`` flux); above
    ``atol`` it is not written. A stale sliding file beside the member is removed whenever none is written.
    ``centre``: subtract the normalised baseline (``preprocessing.pad_value``: 1.0 for median-normalised flux)
    from the flux channel inside the graph (float32 sums then carry the signal, not the baseline).

    Returns
    -------
    (path or None, reason)
        ``reason`` says why there is no sliding graph ("" when written). Unless ``strict``, an unsupported
        architecture or a failed check warns (:class:`SlidingNotWrittenWarning`) instead of raising.

    Raises
    ------
    SlidingUnsupportedError, SlidingMismatchError
        Only with ``strict=True``.
    """
    import onnxruntime as ort

    member_path = Path(member_path)
    target = sliding_path(member_path)
    props = ort.InferenceSession(str(member_path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ModelFileError(f"{member_path}: no flarelight metadata; write the member with export_onnx first")
    meta = ModelMetadata.from_json(props[METADATA_KEY], source=str(member_path))
    if target.exists():  # never leave a graph of an earlier member beside this one
        target.unlink()
    reason = _no_sliding_reason(meta)
    if reason:
        return None, reason
    try:
        if net is None:
            if keras_model is None:
                raise ValueError("write_sliding needs net= or keras_model=")
            net = network_from_keras(keras_model)
        pre = meta.preprocessing
        if (net.window, net.channels) != (pre.window, pre.n_channels):
            raise SlidingUnsupportedError(f"network input ({net.window}, {net.channels}) does not match the "
                                          f"metadata's ({pre.window}, {pre.n_channels})")
        level = float(getattr(pre, "pad_value", 1.0)) if centre else 0.0
        proto, flops = sliding_graph(net, centre=level)
        check = check_sliding(net, proto, member_path, keras_model=keras_model,
                              segments=check_segments(net.window, net.channels, real=real))
        if not check.worst() <= atol:
            raise SlidingMismatchError(
                f"{target.name}: sliding graph differs from its references by {check.worst():.3g} > {atol:g} "
                f"({check.as_dict()}); not written, the member runs per window")
    except (SlidingUnsupportedError, SlidingMismatchError) as exc:
        if strict:
            raise
        warnings.warn(f"{member_path.name}: no sliding graph: {exc}", SlidingNotWrittenWarning, stacklevel=2)
        return None, str(exc)
    info = {"format_version": SLIDING_FORMAT, "member_file": member_path.name,
            "member_sha256": file_sha256(member_path), "window": net.window, "offset": meta.preprocessing.offset,
            "channels": net.channels, "centre_level": level, "flops_per_start": int(flops),
            "flops_per_window": int(net.flops_per_window()), "check": check.as_dict(), "atol": atol}
    for key, value in ((METADATA_KEY, props[METADATA_KEY]), (SLIDING_KEY, json.dumps(info, sort_keys=True))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(target) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return target, ""


def write_network_member(net: Network, path: str | os.PathLike, metadata: ModelMetadata, *,
                         sliding: bool = True, centre: bool = True) -> Path:
    """Write ``net`` as a flarelight member ``path`` (per-window graph, no TensorFlow) and its sliding graph.

    For tests and benches: small sliding-ready models built from :class:`Network` weights.
    """
    pre = metadata.preprocessing
    if (net.window, net.channels) != (pre.window, pre.n_channels):
        raise ModelFileError(f"network input ({net.window}, {net.channels}) does not match the metadata's "
                             f"({pre.window}, {pre.n_channels})")
    proto = window_graph(net, metadata.input_name)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    if sliding:
        write_sliding(path, net, centre=centre, strict=True)
    return path


__all__ = ["Conv", "Pool", "Dense", "Network", "network_from_keras", "example_network", "reference_probabilities",
           "reference_segment", "window_graph", "sliding_graph", "edge_positions", "check_segments", "check_sliding", "SlidingCheck", "write_sliding",
           "write_network_member", "SLIDING_ATOL", "SlidingUnsupportedError", "SlidingMismatchError",
           "SlidingNotWrittenWarning"]
