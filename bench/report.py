"""The reporting half of ``bench/bench_models.py``: the printed tables and the completeness plot.

Everything here reads the result dictionaries that ``bench_models.py`` computes (and writes to JSON); nothing
runs a model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

STELLA_RULE_NOTE = ("stella's rule = runs of prob > 0.5 (flare_eval.events_from_prob); stella's FitFlares "
                    "is not available without the stella package")
#: contenders with their own completeness grids, near/far tables and plot row (each printed where present)
MAIN_CONTENDERS = ("flarelight+ours", "stella+stella-rule", "altaipony")


def fmt(x: Any, nd: int = 2) -> str:
    """A number for the tables ('-' for None)."""
    if x is None:
        return "-"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def print_detection(det: dict[str, Any], split_note: str) -> None:
    """Pooled detection table and per-star FP/day table."""
    print(f"\n== Event-level detection (flare_eval.py rule, slack 2 cadences) ==\n{split_note}\n{STELLA_RULE_NOTE}")
    hdr = f"{'contender':22s} {'set':10s} {'LCs':>3s} {'true':>5s} {'rec':>4s} {'pred':>5s} {'tp':>4s} " \
          f"{'recall':>6s} {'prec':>6s} {'prec_u':>6s} {'F1':>5s}"
    print(hdr)
    for c, d in det.items():
        for name in ("test", "full"):
            s = d.get(name)
            if s is None:
                continue
            print(f"{c:22s} {name:10s} {s['n_lightcurves']:3d} {s['n_true']:5d} {s['n_recovered']:4d} "
                  f"{s['n_pred']:5d} {s['n_tp']:4d} {fmt(s['recall']):>6s} {fmt(s['precision']):>6s} "
                  f"{fmt(s['precision_unique']):>6s} {fmt(s['f1']):>5s}")
    print("\nFalse positives per day on negative stars (pooled):")
    print(f"{'contender':22s} {'flare-free (quiet)':>19s} {'quiet, test split':>18s} {'all negatives':>14s}")
    for c, d in det.items():
        q, qt, a = d["negative_flare_free"], d["negative_flare_free_test"], d["negative_all"]
        print(f"{c:22s} {fmt(q and q['fp_per_day']):>19s} {fmt(qt and qt['fp_per_day']):>18s} "
              f"{fmt(a['fp_per_day']):>14s}")
    print("\nPer-star FP/day (negatives, plus labelled EB/variable stars; '!' = above 2/day; "
          "on labelled stars unlisted real flares count as FPs):")
    names = list(det)
    print(f"{'TIC':>10s} {'sec':>3s} {'category':9s} {'status':8s} {'split':5s} {'days':>5s} " +
          " ".join(f"{n[:19]:>19s}" for n in names))
    first = det[names[0]]["per_star"]
    for i, r in enumerate(first):
        if r["status"] != "negative" and r["category"] == "labelled":
            continue
        cells = []
        for n in names:
            v = det[n]["per_star"][i]["fp_per_day"]
            cells.append(f"{fmt(v):>18s}{'!' if v is not None and v > 2 else ' '}")
        print(f"{r['tic']:>10d} {r['sector']:>3d} {r['category']:9s} {r['status']:8s} {r['split']:5s} "
              f"{r['exposure_days']:5.1f} "
              + " ".join(cells))


def print_2d(tab: dict[str, Any], xname: str, yname: str) -> None:
    """An x-bins by y-bins completeness grid, 'frac (n)' per cell."""
    ye = tab["yedges"]
    print(f"{xname:>16s} | " + " ".join(f"{f'{ye[j]:.3g}-{ye[j + 1]:.3g} {yname}':>14s}" for j in range(len(ye) - 1)))
    xe = tab["xedges"]
    for i in range(len(xe) - 1):
        cells = [f"{fmt(tab['completeness'][i][j]):>5s} ({tab['n'][i][j]:3d})" for j in range(len(ye) - 1)]
        print(f"{f'{xe[i]:.3g}-{xe[i + 1]:.3g}':>16s} | " + " ".join(f"{c:>14s}" for c in cells))


def print_1d_multi(tables: dict[str, dict], xname: str) -> None:
    """One row per bin, one column per contender (or variant)."""
    names = list(tables)
    edges = tables[names[0]]["edges"]
    print(f"{xname:>14s} " + " ".join(f"{n[:19]:>19s}" for n in names))
    for i in range(len(edges) - 1):
        cells = [f"{fmt(tables[n]['completeness'][i]):>5s} ({tables[n]['n'][i]:4d})" for n in names]
        print(f"{f'{edges[i]:.3g}-{edges[i + 1]:.3g}':>14s} " + " ".join(f"{c:>19s}" for c in cells))


def print_injection(comp: dict[str, Any], inj: dict[str, Any]) -> None:
    """Completeness tables."""
    f = inj["flares"]
    print(f"\n== Injection-recovery: {f['tpeak'].size} Davenport flares in {inj['n_lightcurves']} flare-free LCs "
          f"({int(f['near_gap'].sum())} within 100 cadences of a gap/edge) ==")
    print("injected into: " + ", ".join(f"TIC {x['tic']} ({x['split']})" for x in inj["lightcurves"])
          + "  [split of the flarelight model: train/val stars were seen in training]")
    print("recovered = an event overlaps [tpeak - FWHM, tpeak + 3 FWHM] +- 2 cadences; "
          "amplitude = peak relative flux before exposure averaging; SNR = amplitude / robust point-to-point sigma")
    print("overall: " + ", ".join(f"{c} {fmt(v['overall'])}" for c, v in comp.items()))
    for c in [c for c in MAIN_CONTENDERS if c in comp]:
        print(f"\n-- {c}: completeness (n) by relative amplitude x FWHM [min]")
        print_2d(comp[c]["amp_x_fwhm"], "amplitude", "min")
        print(f"-- {c}: completeness (n) by SNR x FWHM [min]")
        print_2d(comp[c]["snr_x_fwhm"], "SNR", "min")
    print("\n-- completeness (n) by equivalent duration [s]")
    print_1d_multi({c: v["ed_s"] for c, v in comp.items()}, "ED [s]")
    print("\n-- completeness (n) by SNR")
    print_1d_multi({c: v["snr"] for c, v in comp.items()}, "SNR")
    print("\n-- near a gap/edge (< 100 cadences) vs far, by SNR")
    tabs = {}
    for c in [c for c in MAIN_CONTENDERS if c in comp]:
        tabs[f"{c[:12]} near"] = comp[c]["snr_near_gap"]
        tabs[f"{c[:12]} far"] = comp[c]["snr_far_from_gap"]
    print_1d_multi(tabs, "SNR")
    print("near/far overall: " + ", ".join(f"{c} {fmt(v['near_gap_overall'])}/{fmt(v['far_from_gap_overall'])}"
                                           for c, v in comp.items()))


def print_targets(rows: list[dict[str, Any]], where: str) -> None:
    """The targets block."""
    print("\n== Targets (issue 6) ==")
    if where != "test":
        print("(no labelled test light curves from a split: recall/precision targets measured on the full "
              "manifest's labelled LCs)")
    print("(stella's precision = the better of stella+stella-rule and stella+ours on the same LCs; "
          "../shared/eval/README.md: stella FitFlares R 0.52 P 0.51 F1 0.52, 0.54 FP/day, full manifest)")
    for r in rows:
        status = "n/a" if r["pass"] is None else ("PASS" if r["pass"] else f"FAIL (misses by {r['misses_by']:.3f})")
        print(f"{r['contender']:20s} {r['target']:58s} {fmt(r['value'], 3):>7s}  {status}")


# ----------------------------------------------------------------------------- plot
def bin_centres(edges: list[float]) -> np.ndarray:
    """Geometric bin centres; an open-ended last bin (upper edge > 10x lower) is drawn at 2x its lower edge."""
    e = np.asarray(edges, float)
    c = np.sqrt(e[:-1] * e[1:])
    if e[-1] > 10 * e[-2]:
        c[-1] = 2 * e[-2]
    return c


def plot(comp: dict[str, Any], path: Path, n_flares: int) -> None:
    """Per model: completeness heat map (amplitude x FWHM), vs SNR near/far, vs ED (each of its rules)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(model, rules) for model, rules in (("flarelight", ("flarelight+ours", "flarelight+runs>0.5")),
                                                ("stella", ("stella+stella-rule", "stella+ours")),
                                                ("AltaiPony", ("altaipony",)))
            if rules[0] in comp]  # a model not part of the injection section in this run has no row
    fig, axes = plt.subplots(len(rows), 3, figsize=(16, 4.75 * len(rows)), constrained_layout=True, squeeze=False)
    for row, (model, rules) in enumerate(rows):
        main = rules[0]
        t = comp[main]["amp_x_fwhm"]
        grid = np.array([[np.nan if v is None else v for v in r] for r in t["completeness"]])
        ax = axes[row, 0]
        im = ax.pcolormesh(t["yedges"], t["xedges"], grid, vmin=0, vmax=1, cmap="viridis")
        ax.set_xscale("log"), ax.set_yscale("log")
        for i in range(len(t["xedges"]) - 1):
            for j in range(len(t["yedges"]) - 1):
                if t["n"][i][j]:
                    x = np.sqrt(t["yedges"][j] * t["yedges"][j + 1])
                    y = np.sqrt(t["xedges"][i] * t["xedges"][i + 1])
                    ax.text(x, y, f"{grid[i, j]:.2f}\n({t['n'][i][j]})", ha="center", va="center", fontsize=7,
                            color="w" if grid[i, j] < 0.6 else "k")
        ax.minorticks_off()
        ax.set_xticks(t["yedges"], [f"{v:.3g}" for v in t["yedges"]])
        ax.set_yticks(t["xedges"], [f"{v:.2g}" for v in t["xedges"]])
        ax.set_xlabel("FWHM [min]"), ax.set_ylabel("peak amplitude [relative flux]")
        ax.set_title(f"{main}: completeness")
        fig.colorbar(im, ax=ax, label="fraction recovered")
        ax = axes[row, 1]
        for rule, ls, mk in zip(rules, ("-", "--"), ("o", "x")):
            for key, col, lab in (("snr_far_from_gap", "tab:blue", "far from gap"),
                                  ("snr_near_gap", "tab:red", "< 100 cad of gap/edge")):
                t1 = comp[rule][key]
                y = np.array([np.nan if v is None else v for v in t1["completeness"]])
                ax.plot(bin_centres(t1["edges"]), y, ls, color=col, marker=mk, label=f"{rule}, {lab}")
        ax.set_xscale("log"), ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("peak amplitude / robust noise sigma (SNR); last bin: SNR > 100"), ax.set_ylabel("fraction recovered")
        ax.set_title(f"{model}: completeness vs SNR, near vs far from gaps"), ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        ax = axes[row, 2]
        for rule, ls in zip(rules, ("-", "--")):
            t1 = comp[rule]["ed_s"]
            y = np.array([np.nan if v is None else v for v in t1["completeness"]])
            ax.plot(bin_centres(t1["edges"]), y, ls, marker="o", label=rule)
        ax.axvline(3.0, color="grey", lw=0.8, ls=":", label="ED = 3 s")
        ax.set_xscale("log"), ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("equivalent duration [s]"), ax.set_ylabel("fraction recovered")
        ax.set_title(f"{model}: completeness vs ED"), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    fig.suptitle(f"Injection-recovery of {n_flares} Davenport flares in flare-free TESS light curves", fontsize=13)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
