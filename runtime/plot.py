"""Pictures of a flare catalogue (the ``plot`` extra: matplotlib is imported inside the function only,
without pyplot: figures are drawn on the Agg canvas and never registered globally).

:func:`plot_flares` draws, top to bottom: the light curve coloured by flare probability with the
catalogue's flares marked (the figure of the stella tutorial), the probability light curve with the
threshold, and a grid of zooms on each flare group with its baseline, its extent and the fitted template(s)
(components dashed).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .catalogue import Catalogue
from .io import LightCurveData


def _import_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("flarelight's plots need matplotlib: pip install flarelight[plot]") from exc
    from matplotlib.figure import Figure  # no pyplot: no global figure registry, Agg canvas when saved

    return Figure


def _title(lc: LightCurveData, table: Any) -> str:
    tic = table.meta.get("tic", lc.meta.get("tic")) if table is not None else lc.meta.get("tic")
    sector = table.meta.get("sector", lc.meta.get("sector")) if table is not None else lc.meta.get("sector")
    parts = [f"TIC {tic}" if tic is not None else lc.label, f"sector {sector}" if sector is not None else ""]
    return "  ".join(p for p in parts if p)


def plot_flares(catalogue: Catalogue, path: str | os.PathLike | None = None, *, max_zooms: int = 12,
                zoom_cols: int = 4, zoom_pad: float = 1.5, title: str | None = None, dpi: int = 120) -> Any:
    """Draw a light curve, its flare probabilities and its catalogue, exactly as measured.

    Parameters
    ----------
    catalogue : Catalogue
        From ``find_flares(..., full=True)`` or :func:`~flarelight.runtime.catalogue.flares_from_scored`:
        the table, the scored light curve and the baseline the rows were measured against.
    path : path, optional
        Save the figure there (format from the suffix, e.g. ``.png``, ``.pdf``).
    max_zooms : int
        At most this many flare zooms (the largest ``ed`` first when there are more).
    zoom_cols : int
        Zoom panels per row.
    zoom_pad : float
        Each zoom spans the flare plus this many flare durations (at least 1 h) either side.
    title : str, optional
        Default "TIC <tic>  sector <s>  (<n> flares, model <id>)".
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    Figure = _import_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.gridspec import GridSpec

    table, lc, baseline = catalogue.table, catalogue.scored.lc, catalogue.baseline
    prob = catalogue.scored.prob
    kept = np.zeros(len(lc), bool)
    kept[catalogue.scored.prepared.kept] = True
    good = kept  # the cadences the model kept and the catalogue measured
    t, f = lc.time[good], lc.flux[good]
    med = float(np.nanmedian(f)) if f.size else 1.0
    fn = f / med
    pg = prob[good]
    scored = np.isfinite(pg)
    n_fl = len(table)
    groups = np.asarray(table["group"], int) if n_fl else np.empty(0, int)
    ugroups, first_row = np.unique(groups, return_index=True)
    group_ed = np.array([np.nansum(np.asarray(table["ed"], float)[groups == g]) for g in ugroups])
    order = np.argsort(-group_ed)[:max_zooms] if ugroups.size else np.empty(0, int)
    zoom_rows = np.sort(first_row[order])  # the first row of each zoomed group
    nz = zoom_rows.size
    zr = int(np.ceil(nz / zoom_cols)) if nz else 0

    heights = [3.0, 1.4] + [2.0] * zr
    fig = Figure(figsize=(13, sum(heights) + 1.2), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(top=1.0 - 0.7 / (sum(heights) + 1.2), bottom=0.35 / (sum(heights) + 1.2), left=0.06, right=0.97)
    gs = GridSpec(2 + zr, zoom_cols, figure=fig, height_ratios=heights, hspace=0.55, wspace=0.28)
    thr = table.meta.get("threshold", 0.5)
    mid = table.meta.get("model_id") or ""
    if title is None:
        title = f"{_title(lc, table)}  ({n_fl} flare{'s' if n_fl != 1 else ''}" + (f", model {mid}" if mid else "") + ")"
    if ugroups.size > nz:
        title += f"\nzooms: the {nz} flares with the largest ED"
    fig.suptitle(title, fontsize=13)

    # panel 1: light curve coloured by probability (unscored cadences grey)
    ax1 = fig.add_subplot(gs[0, :])
    ax1.plot(t[~scored], fn[~scored], ".", ms=1.5, color="0.75", label="not scored", rasterized=True)
    sc = ax1.scatter(t[scored], fn[scored], c=pg[scored], s=2, cmap="viridis", vmin=0, vmax=1, rasterized=True)
    cb = fig.colorbar(sc, ax=ax1, pad=0.01, fraction=0.03)
    cb.set_label("flare probability")
    if n_fl:
        tp = np.asarray(table["tpeak"], float)
        ip = np.asarray(table["ipeak"], int)
        ytop = lc.flux[ip] / med
        ymark = ytop + 0.04 * (np.nanpercentile(fn, 99.5) - np.nanpercentile(fn, 0.5) + 1e-9)
        ax1.plot(tp, ymark, "v", color="crimson", ms=5, label="catalogued flare (#: zoomed below)")
        for k in zoom_rows:
            ax1.annotate(str(k), (tp[k], ymark[k]), xytext=(0, 5), textcoords="offset points", ha="center",
                         va="bottom", fontsize=7, color="crimson")
    lo, hi = np.nanpercentile(fn, [0.1, 99.9]) if fn.size else (0.9, 1.1)
    top = max(hi, float(np.nanmax(lc.flux[np.asarray(table["ipeak"], int)] / med)) if n_fl else hi)
    ax1.set_ylim(lo - 0.1 * (hi - lo), top + 0.25 * (top - lo))
    ax1.set_xlabel("time [BTJD = BJD - 2457000, d]")
    ax1.set_ylabel("normalised flux")
    ax1.legend(loc="upper left", fontsize=8)

    # panel 2: probability light curve
    ax2 = fig.add_subplot(gs[1, :], sharex=ax1)
    ax2.plot(lc.time, prob, "-", lw=0.6, color="k")
    ax2.axhline(thr, color="crimson", lw=0.8, ls="--", label=f"threshold {thr:g}")
    for row in table:
        ax2.axvspan(float(row["tstart"]), float(row["tstop"]), color="crimson", alpha=0.25, lw=0)
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_ylabel("probability")
    ax2.set_xlabel("time [BTJD, d]")
    ax2.legend(loc="upper left", fontsize=8)

    # zooms
    cad_d = (table.meta.get("cadence_s") or 120.0) / 86400.0
    for j, k in enumerate(zoom_rows):
        row = table[int(k)]
        members = np.flatnonzero(groups == int(row["group"]))
        ts = float(np.min(np.asarray(table["tstart"])[members]))
        te = float(np.max(np.asarray(table["tstop"])[members]))
        ax = fig.add_subplot(gs[2 + j // zoom_cols, j % zoom_cols])
        pad = max(zoom_pad * (te - ts + cad_d), 1.0 / 24)
        w = (lc.time >= ts - pad) & (lc.time <= te + pad)
        wg = w & good
        tref = float(table["tpeak"][members[int(np.argmax(np.asarray(table["amplitude"])[members]))]])
        x = (lc.time - tref) * 24.0
        ax.plot(x[wg], lc.flux[wg] / med, ".-", ms=2.5, lw=0.5, color="0.2")
        ax.plot(x[wg], baseline[wg] / med, "-", color="tab:orange", lw=1.2, label="baseline")
        inside = wg & (lc.time >= ts) & (lc.time <= te)
        ax.fill_between(x[inside], baseline[inside] / med, lc.flux[inside] / med, color="crimson", alpha=0.3, lw=0)
        if np.any(np.asarray(table["fitted"])[members]) and wg.sum() > 1:
            tw = lc.time[wg]
            fine = np.linspace(tw[0], tw[-1], max(200, 8 * tw.size))
            base_fine = np.interp(fine, tw, baseline[wg])
            total = catalogue.model_flux(fine, members)
            ax.plot((fine - tref) * 24.0, base_fine * (1.0 + total) / med, "-", color="tab:blue", lw=1.0,
                    label="fitted template")
            if members.size > 1:
                for r in members:
                    comp = catalogue.model_flux(fine, [int(r)])
                    ax.plot((fine - tref) * 24.0, base_fine * (1.0 + comp) / med, "--", color="tab:blue", lw=0.6)
        ed_group = float(np.nansum(np.asarray(table["ed"], float)[members]))
        flags = "" if bool(np.all(np.asarray(table["vetted"])[members])) else "  (not vetted)"
        ax.set_title(f"#{k}  t={tref:.3f}  ED={ed_group:.1f} s"
                     + (f"  {members.size} components" if members.size > 1 else "") + flags, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("hours from tpeak", fontsize=7)
        if j % zoom_cols == 0:
            ax.set_ylabel("normalised flux", fontsize=7)
        if j == 0:
            ax.legend(fontsize=6, loc="upper right")
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


__all__ = ["plot_flares"]
