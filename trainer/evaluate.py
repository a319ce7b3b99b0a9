"""Evaluation from scratch with numpy: window metrics, PR curve, per-cadence and per-event scores, plots.

Per-event scoring follows ``../shared/eval/flare_eval.py``: events are contiguous runs of probability above the
threshold (split at time gaps > 1.5 cadences); a predicted event [ps, pe] overlaps a label [ls, le] when
``ps <= le + slack`` and ``pe >= ls - slack`` with ``slack = 2`` cadences; a label is recovered if any event overlaps
it, an event is a true positive if it overlaps any label.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from flarelight.runtime.errors import FlarelightError
from flarelight.runtime.io import LightCurveData

from .catalogs import FlareCatalog, merge_intervals
from .dataset import _json_default, cadence_labels

SLACK_CADENCES = 2


class EvaluationError(FlarelightError, ValueError):
    """Inputs that cannot be scored (mismatched lengths, no labels where some are needed)."""


def _check(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, float).reshape(-1)
    p = np.asarray(p, float).reshape(-1)
    if y.size != p.size:
        raise EvaluationError(f"{y.size} labels but {p.size} probabilities")
    ok = np.isfinite(p)
    return y[ok] > 0.5, p[ok]


def confusion_matrix(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``[[tn, fp], [fn, tp]]`` for predictions ``p > threshold`` (NaN probabilities ignored)."""
    t, p = _check(y, p)
    pred = p > threshold
    return np.array([[np.sum(~t & ~pred), np.sum(~t & pred)], [np.sum(t & ~pred), np.sum(t & pred)]], np.int64)


def precision_recall_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct threshold (predict positive when ``p >= threshold``).

    Returns
    -------
    precision, recall : ndarray
        Ordered by decreasing threshold, with a final point (precision 1, recall 0) prepended.
    thresholds : ndarray
        Decreasing distinct probabilities.
    """
    t, p = _check(y, p)
    order = np.argsort(-p, kind="mergesort")
    p, t = p[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(p)), p.size - 1]  # last index of each distinct score
    tp = np.cumsum(t)[last]
    fp = (last + 1) - tp
    n_pos = int(t.sum())
    precision = np.divide(tp, tp + fp, out=np.ones(tp.size), where=(tp + fp) > 0)
    recall = tp / n_pos if n_pos else np.zeros(tp.size)
    return np.r_[1.0, precision], np.r_[0.0, recall], p[last]


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision: ``sum_n (R_n - R_{n-1}) P_n`` over decreasing thresholds (NaN if no positive)."""
    t, _ = _check(y, p)
    if not t.any():
        return float("nan")
    precision, recall, _ = precision_recall_curve(y, p)
    return float(np.sum(np.diff(recall) * precision[1:]))


def window_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict:
    """Confusion matrix, precision, recall, accuracy, F1 and average precision of window (or cadence) scores."""
    cm = confusion_matrix(y, p, threshold)
    (tn, fp), (fn, tp) = cm.tolist()
    n = tn + fp + fn + tp
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if (tp and precision + recall) else 0.0 if n else float("nan")
    return {"threshold": threshold, "n": int(n), "n_positive": int(tp + fn), "confusion_matrix": cm.tolist(),
            "tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp), "precision": float(precision),
            "recall": float(recall), "accuracy": float((tp + tn) / n) if n else float("nan"), "f1": float(f1),
            "average_precision": average_precision(y, p)}


def events_from_prob(time: np.ndarray, prob: np.ndarray, threshold: float = 0.5,
                     cadence_d: float | None = None) -> np.ndarray:
    """Runs of ``prob > threshold`` as ``(n, 3)`` [tpeak (max prob), tstart, tstop], split at gaps > 1.5 cadences."""
    time, prob = np.asarray(time, float), np.asarray(prob, float)
    ok = np.isfinite(time)
    time, prob = time[ok], prob[ok]
    if time.size == 0:
        return np.empty((0, 3))
    cad = cadence_d or float(np.nanmedian(np.diff(time)))
    on = prob > threshold  # NaN -> False
    cont = np.r_[False, on[1:] & on[:-1] & (np.diff(time) <= 1.5 * cad)]
    starts = np.flatnonzero(on & ~cont)
    ev = []
    for i in starts:
        j = i
        while j + 1 < on.size and cont[j + 1]:
            j += 1
        k = i + int(np.argmax(prob[i:j + 1]))
        ev.append((time[k], time[i], time[j]))
    return np.array(ev, float).reshape(-1, 3)


def overlaps(a: np.ndarray, b: np.ndarray, slack: float) -> np.ndarray:
    """Boolean matrix: interval ``a[i]`` overlaps ``b[j]`` within ``slack``."""
    a, b = np.asarray(a, float).reshape(-1, 2), np.asarray(b, float).reshape(-1, 2)
    return (a[:, None, 0] <= b[None, :, 1] + slack) & (a[:, None, 1] >= b[None, :, 0] - slack)


def event_scores(events: np.ndarray, true: np.ndarray, cadence_d: float, good_time: np.ndarray | None = None,
                 slack_cadences: int = SLACK_CADENCES) -> dict:
    """Event-level counts and precision/recall/F1 of predicted events against labelled intervals.

    A label counts only if observable (``good_time`` has a cadence within it, +-0.5 cadence) when ``good_time``
    is given.
    """
    events = np.asarray(events, float).reshape(-1, 3)
    true = merge_intervals(true)
    if good_time is not None:
        obs = np.array([np.any((good_time >= s - cadence_d / 2) & (good_time <= e + cadence_d / 2)) for s, e in true],
                       bool)
    else:
        obs = np.ones(len(true), bool)
    m = overlaps(events[:, 1:], true, slack_cadences * cadence_d)
    tp = m.any(1)
    rec = m[:, obs].any(0)
    n_true, n_rec, n_tp, n_pred = int(obs.sum()), int(rec.sum()), int(tp.sum()), len(events)
    days = (good_time.size * cadence_d) if good_time is not None else float("nan")
    r = n_rec / n_true if n_true else float("nan")
    p = n_tp / n_pred if n_pred else float("nan")
    f1 = 2 * r * p / (r + p) if (n_true and n_pred and r + p > 0) else float("nan") if not (n_true and n_pred) else 0.0
    return {"n_true": n_true, "n_recovered": n_rec, "n_pred": n_pred, "n_tp": n_tp, "n_fp": n_pred - n_tp,
            "recall": r, "precision": p, "f1": f1, "exposure_days": days,
            "fp_per_day": (n_pred - n_tp) / days if days and np.isfinite(days) else float("nan")}


def evaluate_lightcurves(predict: Callable[[LightCurveData], np.ndarray], lightcurves: Sequence[LightCurveData],
                         labels: FlareCatalog | Sequence[Any], threshold: float = 0.5,
                         progress: Any = None) -> dict:
    """Per-cadence and per-event scores of a model on held-out light curves.

    Parameters
    ----------
    predict : callable
        ``predict(lc) -> prob`` at input length, NaN where unscored (e.g. ``FlareModel(...).predict`` or
        :func:`keras_predictor`).
    lightcurves : sequence of LightCurveData
    labels : FlareCatalog, or one entry per light curve ((n, 2) BTJD intervals, FlareCatalog or table)
    threshold : float
    progress : object with ``update(n)``, optional

    Returns
    -------
    dict
        ``cadence``: :func:`window_metrics` over all scored cadences (a cadence is positive inside a labelled
        interval); ``event``: pooled :func:`event_scores`; ``per_lightcurve``: both per light curve.
    """
    from .dataset import _labels_for

    ys, ps, per = [], [], []
    pooled = {"n_true": 0, "n_recovered": 0, "n_pred": 0, "n_tp": 0, "n_fp": 0, "exposure_days": 0.0}
    for k, lc in enumerate(lightcurves):
        item = labels if isinstance(labels, FlareCatalog) else labels[k]
        iv, _ = _labels_for(item, lc, False)
        prob = np.asarray(predict(lc), float)
        if prob.size != len(lc):
            raise EvaluationError(f"{lc.label}: predict returned {prob.size} values for {len(lc)} cadences")
        scored = np.isfinite(prob) & lc.good
        y = cadence_labels(lc.time[scored], iv)
        ys.append(y)
        ps.append(prob[scored])
        tg = lc.time[lc.good]
        cad = float(np.median(np.diff(tg)))
        ev = events_from_prob(lc.time[lc.good], prob[lc.good], threshold, cad)
        es = event_scores(ev, iv, cad, tg)
        for key in pooled:
            pooled[key] += es[key]
        per.append({"lightcurve": lc.label, "tic": lc.meta.get("tic"), "cadence": window_metrics(y, prob[scored], threshold),
                    "event": es, "n_scored": int(scored.sum()), "n_cadences": len(lc)})
        if progress is not None:
            progress.update(1)
    r = pooled["n_recovered"] / pooled["n_true"] if pooled["n_true"] else float("nan")
    p = pooled["n_tp"] / pooled["n_pred"] if pooled["n_pred"] else float("nan")
    pooled.update(recall=r, precision=p, f1=2 * r * p / (r + p) if (r + p) > 0 else float("nan"),
                  fp_per_day=pooled["n_fp"] / pooled["exposure_days"] if pooled["exposure_days"] else float("nan"))
    y_all = np.concatenate(ys) if ys else np.empty(0)
    p_all = np.concatenate(ps) if ps else np.empty(0)
    return {"threshold": threshold, "cadence": window_metrics(y_all, p_all, threshold), "event": pooled,
            "per_lightcurve": per, "slack_cadences": SLACK_CADENCES}


def keras_predictor(model, pre, batch_size: int = 4096) -> Callable[[LightCurveData], np.ndarray]:
    """``predict(lc)`` for a Keras model, with the runtime's preprocessing and windows (for evaluating before export)."""
    from flarelight.runtime.preprocess import prepare, window_batches

    def predict(lc: LightCurveData) -> np.ndarray:
        prep = prepare(lc, pre)
        out = np.empty(prep.centres.size, np.float64)
        for sl, batch in window_batches(prep, pre, batch_size):
            out[sl] = np.asarray(model(batch, training=False)).reshape(-1)
        return prep.scatter(out)

    return predict


# ----------------------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_pr_curve(y: np.ndarray, p: np.ndarray, path: str | os.PathLike, label: str = "") -> Path:
    """Precision-recall curve to a PNG."""
    plt = _plt()
    precision, recall, _ = precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.step(recall, precision, where="post", label=f"{label} AP={average_precision(y, p):.3f}".strip())
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_confusion(cm: np.ndarray, path: str | os.PathLike) -> Path:
    """Confusion matrix ``[[tn, fp], [fn, tp]]`` to a PNG."""
    plt = _plt()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(3.5, 3.2))
    ax.imshow(cm, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center")
    ax.set_xticks([0, 1], ["no flare", "flare"])
    ax.set_yticks([0, 1], ["no flare", "flare"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_history(history: dict, path: str | os.PathLike) -> Path:
    """Training and validation loss per epoch to a PNG."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for key in ("loss", "val_loss"):
        if key in history:
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def write_report(metrics: dict, y: np.ndarray | None, p: np.ndarray | None, out_dir: str | os.PathLike,
                 prefix: str = "") -> list[Path]:
    """``<prefix>metrics.json`` plus PR-curve and confusion-matrix PNGs (when window scores are given)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{prefix}metrics.json"]
    paths[0].write_text(json.dumps(metrics, indent=1, default=_json_default))
    if y is not None and p is not None and np.asarray(y).size:
        paths.append(plot_pr_curve(y, p, out_dir / f"{prefix}pr_curve.png"))
        paths.append(plot_confusion(confusion_matrix(y, p, metrics.get("threshold", 0.5)), out_dir / f"{prefix}confusion.png"))
    return paths




__all__ = ["confusion_matrix", "precision_recall_curve", "average_precision", "window_metrics", "events_from_prob",
           "event_scores", "evaluate_lightcurves", "keras_predictor", "plot_pr_curve", "plot_confusion", "plot_history",
           "write_report", "EvaluationError"]
