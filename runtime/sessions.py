"""Opening onnxruntime sessions: the one place that sets session options."""
from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from .errors import ModelFileError


def session_options(threads: int | None, mem_pattern: bool = True) -> ort.SessionOptions:
    """Options of every flarelight session: full graph optimisation, ``threads`` intra-op threads, no arena.

    ``threads`` None or 0 lets onnxruntime use all cores. The memory arena is off: it keeps each session's
    peak buffers (about 1 GB per member at large batches). ``mem_pattern=False`` allocates each tensor on its
    own instead of one planned block per call (sliding graphs: half the scoring memory, same speed).
    """
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = int(threads) if threads else 0
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.enable_cpu_mem_arena = False
    so.enable_mem_pattern = mem_pattern
    return so


def open_session(path: Path, threads: int | None, mem_pattern: bool = True) -> ort.InferenceSession:
    """An onnxruntime CPU session of ``path``; :class:`ModelFileError` if it is missing or not loadable."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads, mem_pattern),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own non-exported exception types
        raise ModelFileError(f"{path}: not a loadable ONNX model ({type(exc).__name__}: {exc})") from exc
