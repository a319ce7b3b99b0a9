"""Evaluation from scratch with numpy: window metrics, PR curve, per-cadence and per-event scores, plots.

A detected event is what the runtime ships: a row of :func:`flarelight.runtime.find_flares` (the catalogue),
built from the model's probabilities. Per-event scoring follows ``../shared/eval/flare_eval.py``: a row
[ps, pe] overlaps a label [ls, le] when ``ps <= le + slack`` and ``pe >= ls - slack`` with ``slack = 2``
cadences; a label is recovered if any row overlaps it, a row is a true positive if it overlaps any label.
Window and per-cadence metrics are extra views of the same probabilities.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from flarelight.runtime.atomic import atomic_path
from flarelight.runtime.errors import FlarelightError
from flarelight.runtime.io import LightCurveData
from flarelight.runtime.jsonio import write_json
from flarelight.runtime.metadata import Preprocessing
from flarelight.runtime.scored import Scored

from .labels import FlareCatalog, cadence_labels, labels_for, merge_intervals

SLACK_CADENCES = 2
#: event counts summed by :func:`pool`
COUNTS = ("n_true", "n_recovered", "n_pred", "n_tp", "n_fp")


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


def overlaps(a: np.ndarray, b: np.ndarray, slack: float) -> np.ndarray:
    """Boolean matrix: interval ``a[i]`` overlaps ``b[j]`` within ``slack``."""
    a, b = np.asarray(a, float).reshape(-1, 2), np.asarray(b, float).reshape(-1, 2)
    return (a[:, None, 0] <= b[None, :, 1] + slack) & (a[:, None, 1] >= b[None, :, 0] - slack)


def prf(n_true: int, n_recovered: int, n_pred: int, n_tp: int) -> dict:
    """Recall, precision and F1 from event counts, as ``flare_eval.py`` pools them (the one F1 of the trainer).

    Recall is NaN without labels, precision NaN without events, F1 NaN if either is, 0 if both are 0.
    """
    r = n_recovered / n_true if n_true else float("nan")
    p = n_tp / n_pred if n_pred else float("nan")
    f1 = float("nan") if not (np.isfinite(r) and np.isfinite(p)) else (2 * r * p / (r + p) if r + p > 0 else 0.0)
    return {"recall": r, "precision": p, "f1": f1}


def pool(rows: Sequence[dict]) -> dict:
    """Sum the event counts and exposure of several :func:`event_scores` results and score the sums."""
    out: dict[str, Any] = {k: int(sum(r[k] for r in rows)) for k in COUNTS}
    days = float(sum(r["exposure_days"] for r in rows if np.isfinite(r["exposure_days"])))
    out["exposure_days"] = days
    out.update(prf(out["n_true"], out["n_recovered"], out["n_pred"], out["n_tp"]))
    out["fp_per_day"] = out["n_fp"] / days if days > 0 else float("nan")
    out["n_lightcurves"] = len(rows)
    return out


def event_scores(events: np.ndarray, true: np.ndarray, cadence_d: float, good_time: np.ndarray | None = None,
                 slack_cadences: int = SLACK_CADENCES) -> dict:
    """Event-level counts and precision/recall/F1 of predicted events against labelled intervals.

    Parameters
    ----------
    events : ndarray, shape (n, 3)
        [tpeak, tstart, tstop] per event (e.g. :func:`catalogue_events`).
    true : ndarray, shape (m, 2)
        Labelled [tstart, tstop] intervals (overlapping ones are merged).
    cadence_d : float
    good_time : ndarray, optional
        Times of the scored cadences: a label counts only if one lies within it (+-0.5 cadence), and
        they give the exposure for false positives per day.
    slack_cadences : int
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
    return {"n_true": n_true, "n_recovered": n_rec, "n_pred": n_pred, "n_tp": n_tp, "n_fp": n_pred - n_tp,
            **prf(n_true, n_rec, n_pred, n_tp), "exposure_days": days,
            "fp_per_day": (n_pred - n_tp) / days if days and np.isfinite(days) else float("nan")}


def catalogue_events(scored: Scored, threshold: float) -> np.ndarray:
    """The events the runtime ships: ``find_flares`` rows of a scored light curve as (n, 3) [tpeak, tstart, tstop]."""
    from flarelight.runtime import find_flares

    t = find_flares(scored, threshold=threshold)
    return np.column_stack([np.asarray(t[c], float) for c in ("tpeak", "tstart", "tstop")]).reshape(-1, 3)


def evaluate_lightcurves(score: Callable[[LightCurveData], Scored | np.ndarray], lightcurves: Sequence[LightCurveData],
                         labels: FlareCatalog | Sequence[Any], threshold: float = 0.5, *,
                         pre: Preprocessing | None = None, progress: Any = None,
                         return_arrays: bool = False) -> dict | tuple[dict, np.ndarray, np.ndarray]:
    """Per-event (catalogue rows) and per-cadence scores of a model on held-out light curves.

    Parameters
    ----------
    score : callable
        ``score(lc)`` returns a :class:`~flarelight.runtime.scored.Scored` (e.g. ``FlareModel(...).score``) or
        the probabilities at input length, NaN where unscored (e.g. :func:`keras_predictor`).
    lightcurves : sequence of LightCurveData
    labels : FlareCatalog, or one entry per light curve ((n, 2) BTJD intervals, FlareCatalog or table)
    threshold : float
        The catalogue's threshold (and the cadence metrics').
    pre : Preprocessing, optional
        Masking and gap rule placing probabilities returned as an array (the model's); ignored for ``Scored``.
    progress : object with ``update(n)``, optional
    return_arrays : bool
        Also return the per-cadence labels and probabilities (for the PR curve): ``(result, y, p)``.

    Returns
    -------
    dict
        ``event``: pooled :func:`event_scores` of the ``find_flares`` rows; ``cadence``: :func:`window_metrics`
        over all scored cadences (a cadence is positive inside a labelled interval); ``per_lightcurve``: both
        per light curve.
    """
    ys, ps, per = [], [], []
    for k, lc in enumerate(lightcurves):
        item = labels if isinstance(labels, FlareCatalog) else labels[k]
        iv, _ = labels_for(item, lc, False)
        scored = score(lc)
        if not isinstance(scored, Scored):
            prob = np.asarray(scored, float)
            if prob.size != len(lc):
                raise EvaluationError(f"{lc.label}: score returned {prob.size} values for {len(lc)} cadences")
            scored = Scored.from_probabilities(lc, prob, pre, threshold=threshold)
        prob = scored.prob
        ok = np.isfinite(prob) & lc.good
        y = cadence_labels(lc.time[ok], iv)
        ys.append(y)
        ps.append(prob[ok])
        kept_t = scored.prepared.time
        cad = float(np.median(np.diff(kept_t)))
        es = event_scores(catalogue_events(scored, threshold), iv, cad, kept_t)
        per.append({"lightcurve": lc.label, "tic": lc.meta.get("tic"), "cadence": window_metrics(y, prob[ok], threshold),
                    "event": es, "n_scored": int(ok.sum()), "n_cadences": len(lc)})
        if progress is not None:
            progress.update(1)
    y_all = np.concatenate(ys) if ys else np.empty(0)
    p_all = np.concatenate(ps) if ps else np.empty(0)
    result = {"threshold": threshold, "event_rule": "rows of flarelight.runtime.find_flares at this threshold",
              "cadence": window_metrics(y_all, p_all, threshold), "event": pool([r["event"] for r in per]),
              "per_lightcurve": per, "slack_cadences": SLACK_CADENCES}
    return (result, y_all, p_all) if return_arrays else result


def keras_predictor(model, pre, batch_size: int = 4096) -> Callable[[LightCurveData], np.ndarray]:
    """``predict(lc)`` for a Keras model, with the runtime's preprocessing and windows (for evaluating before export)."""
    from flarelight.runtime.preprocess import prepare, window_batches

    def predict(lc: LightCurveData) -> np.ndarray:
        prep = prepare(lc, pre)
        out = np.empty(prep.centres.size, np.float64)
        for sl, batch in window_batches(prep, batch_size):
            out[sl] = np.asarray(model(batch, training=False)).reshape(-1)
        return prep.scatter(out)

    return predict


# ----------------------------------------------------------------------------- plots
def _savefig(fig: Any, path: str | os.PathLike) -> Path:
    """Save a figure atomically (the temporary file keeps the suffix, so the format follows it)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    return Path(path)


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
    _savefig(fig, path)
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
    _savefig(fig, path)
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
    _savefig(fig, path)
    plt.close(fig)
    return Path(path)


def write_report(metrics: dict, y: np.ndarray | None, p: np.ndarray | None, out_dir: str | os.PathLike,
                 prefix: str = "") -> list[Path]:
    """``<prefix>metrics.json`` plus PR-curve and confusion-matrix PNGs (when window scores are given)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_json(out_dir / f"{prefix}metrics.json", metrics)]
    if y is not None and p is not None and np.asarray(y).size:
        paths.append(plot_pr_curve(y, p, out_dir / f"{prefix}pr_curve.png"))
        paths.append(plot_confusion(confusion_matrix(y, p, metrics.get("threshold", 0.5)), out_dir / f"{prefix}confusion.png"))
    return paths




__all__ = ["confusion_matrix", "precision_recall_curve", "average_precision", "window_metrics", "prf", "pool",
           "event_scores", "catalogue_events", "evaluate_lightcurves", "keras_predictor", "plot_pr_curve", "plot_confusion", "plot_history",
           "write_report", "EvaluationError"]
