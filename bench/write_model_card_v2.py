"""Write the model card of a sliding-ready model trained by recipe_v2 (flarelight-v2, the default, or another run of
that recipe) from its training.json, the members (hashes, metadata, sliding graphs and their cost) and the figures
of bench/results/models.json and bench/results/find.json (runs with that model as the main one).

    python bench/write_model_card_v2.py [--models models/flarelight-v2] [--bench bench/results/models.json]
                                        [--find bench/results/find.json]
"""
from __future__ import annotations

import json
from pathlib import Path

from write_model_card import (card_inputs, data_lines, fmt, members_table, quality_section, split_lines,
                              write_card)

from flarelight.models import DEFAULT_MODEL
from flarelight.runtime import FlareModel


def cost_lines(model: FlareModel) -> list[str]:
    """Multiply-adds per cadence of every member in sliding form (from the graphs' own records)."""
    per = [m.sliding.flops_per_start / 2 if m.sliding else None for m in model.members]
    per_window = [int(m.sliding.info.get("flops_per_window", 0)) / 2 if m.sliding else None for m in model.members]
    total = sum(p for p in per if p)
    return [f"- **cost**: {fmt(per[0], 0)} multiply-adds per cadence per member in sliding form "
            f"({fmt(per_window[0], 0)} per window in per-window form); the whole ensemble of {model.n_models}: "
            f"**{total:,.0f} multiply-adds per cadence** (issue 11's budget: 250,000; flarelight-v1: ~2.3 million; "
            "stella's architecture: ~106,000 per member, ~1.06 million for its ten)."]


def issue11_section(bench: dict) -> list[str]:
    peers = "this model, the other shipped models and stella's ensemble" + (", and AltaiPony (no ML: `detrend(\"savgol\")` + `find_flares()`, "
                                              f"{bench['altaipony']['versions'].get('altaipony', '?').rstrip('.')}, "
                                              "its own venv)" if bench.get("altaipony") else "")
    out = ["", "## Issue 11's bars", "",
           f"From `python bench/bench_models.py` ({peers} in one run; held-out test stars and "
           "held-out simulated impostors) and `python bench/bench_find.py` (speed, every DEV sector).", ""]
    for t in bench.get("targets_issue11", []):
        status = "reported" if t["pass"] is None else ("pass" if t["pass"] else "**FAIL**, by " + fmt(t.get("misses_by"), 3))
        out.append(f"- {t['target']}: {fmt(t['value'], 3)} ({status})")
    imp = bench.get("impostors")
    if imp:
        models = list(imp["kinds"])
        kinds = list(imp["kinds"][models[0]])
        out += ["", f"Held-out simulated impostors (seed {imp['seed']}, never used in training) on the flare-free "
                f"test stars TIC {', '.join(map(str, imp['hosts']))}: false positives per day of the catalogue "
                "(`find_flares`, each model's own threshold):", "",
                "| impostor | light curves | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
        for k in kinds:
            out.append(f"| {k} | {imp['kinds'][models[0]][k]['n_lightcurves']} | "
                       + " | ".join(fmt(imp["kinds"][m][k]["fp_per_day"], 3) for m in models) + " |")
    comp = bench["injection"]["completeness"]
    out += ["", "Injection-recovery by issue 11's bands (completeness, number; what an ideal detector recovers — one "
            "that knows each flare's time and shape and keeps it when its matched-filter statistic, SNR_mf plus unit "
            "noise, exceeds 5 / 4 / 3; near a gap / far; peak cadence flagged bit 512 / not, "
            f"{bench.get('bit512_fraction', 0.3):.0%} of the peaks flagged, different flares):", "",
            "| contender | band | completeness (n) | ideal detector | near gap / far | bit-512 peak / unflagged |",
            "|---|---|---|---|---|---|"]
    for c, v in comp.items():
        for band, b in v.get("ed_bands", {}).items():
            out.append(f"| {c} | {band} | {fmt(b['completeness'], 3)} ({b['n']}) | {' / '.join(fmt(b.get(f'ideal_mf{t}'), 3) for t in (5, 4, 3))} | "
                       f"{fmt(b['near_gap'])} / {fmt(b['far_from_gap'])} | {fmt(b['bit512_peak'])} / "
                       f"{fmt(b['unflagged_peak'])} |")
    paired = {c: v["bit512_paired"] for c, v in comp.items() if v.get("bit512_paired")}
    if paired:
        out += ["", "The bit-512 flag's own effect, paired: the flagged flares recovered with their flag / the same "
                "flares (same noise) without it (flares lost by the flag):", ""]
        out += [f"- {c}: {fmt(pb['with_flag'], 3)} / {fmt(pb['without_flag'], 3)} of {pb['n']} "
                f"(lost {pb['lost_by_flag']})" for c, pb in paired.items()]
    return out


def speed_lines(find: dict, name: str) -> list[str]:
    """Speed from ``bench/bench_find.py``: a user's default ``find_flares(file, model)`` per sector (``name``: this
    model's key there)."""
    rat, med = find["ratios"], find["median_seconds"]
    secs = find["sectors"]
    if name not in med:
        return ["", "## Speed", "", f"(bench/bench_find.py was not run with {name}: no figures.)"]
    worst = max(secs, key=lambda r: r[name]["wall_s"])
    out = ["", "## Speed", "",
           f"`python bench/bench_find.py` ({find['machine']['cpu_model']}, {find['machine']['cpu_count']} cores "
           f"shared with other jobs, load average {find['loadavg_before'][0]:.1f} at the start): a user's default "
           f"`find_flares(file, model)` (read, score, catalogue) on each of the {len(secs)} DEV sectors, each model "
           "in its own warm process; stella 0.3.0 `predict_ensemble` on JAX (probabilities only) timed on "
           f"{len(find['stella'])} sectors and scaled by cadences elsewhere.", "",
           f"- median sector: {name} {med[name]:.2f} s, v1 {med.get('flarelight-v1', float('nan')):.1f} s: "
           f"**x{rat['v1_over_v2']['median']:.1f}** (target x10); stella over v2 "
           f"**x{rat['stella_over_v2']['median']:.1f}** (target x40);" if "v1_over_v2" in rat and "stella_over_v2" in rat
           else f"- median sector: {name} {med[name]:.2f} s;",
           f"- slowest sector, {worst['file']} ({worst[name]['rows']} rows): {name} "
           f"{worst[name]['wall_s']:.2f} s — the catalogue's template fits grow with the number of flares; "
           "the network is 34k multiply-adds per cadence."]
    return out


def main() -> None:
    a, rec, model = card_inputs(__doc__.split("\n")[0], f"models/{DEFAULT_MODEL}", find="bench/results/find.json")
    name = rec.get("model_name") or a.models.name
    pre = model.preprocessing
    cnn = rec.get("cnn", {})
    hard = rec.get("hard_negatives", {})
    default = name == DEFAULT_MODEL
    role = (f"flarelight's default model: {model.n_models}" if default else
            f"Not the default ({DEFAULT_MODEL} is; load this one with `FlareModel.named(\"{name}\")`): "
            f"{model.n_models}")
    lines = [
        f"# {name}", "",
        f"{role} small CNNs built for sliding execution (a cadence has the same "
        "input in every window, so one pass per segment scores every cadence), trained by `flarelight.trainer` on "
        "the real labelled TESS light curves of `../shared/data` plus injected flares and simulated impostors "
        "(eclipsing and reflection binaries, pulsators, rotators, ramps, steps, cosmic rays) as hard negatives. "
        "Older models stay available by name: `flarelight models` lists them.", "",
        "## Use", "",
        "    from flarelight.runtime import FlareModel, find_flares",
        ("    table = find_flares(\"tess..._lc.fits\")          # this model (the default)" if default else
         f"    table = find_flares(\"tess..._lc.fits\", FlareModel.named(\"{name}\"))"),
        "    v1 = FlareModel.named(\"flarelight-v1\")           # the first one", "",
        "## Preprocessing (in every member's ONNX metadata)", "",
        f"- 2-minute cadence ({pre.cadence_s:.0f} s); quality bitmask {pre.quality_bitmask}: lightkurve's default "
        "**without ImpulsiveOutlier (512)**, whose cadences are often flare peaks on active M dwarfs (the model "
        "learnt that a lone one-cadence spike, flagged or not, is not a flare);",
        f"- `{pre.normalisation}`, per cadence and once per light curve: flux divided by its median, minus a running "
        f"median of {2 * pre.baseline_half_width + 1} cadences within its segment, divided by the light curve's "
        "robust point-to-point noise, arcsinh-compressed;",
        f"- windows of {pre.window} cadences, the window of cadence i = input[i-{pre.offset}:i+{pre.window - pre.offset}];",
        f"- segments split where a step exceeds {pre.gap_tolerance} x the median cadence;",
        f"- edge mode `{pre.edge_mode}`: a second channel flags real cadences (1) and padding (0, flux 0), so every "
        "kept cadence is scored;",
        f"- recommended catalogue threshold {model.threshold:.2f}, chosen on the validation stars ("
        f"{rec.get('threshold_rule', 'event-level F1')}; scan in `training.json`).", "",
        "## Architecture and cost", "",
        f"- per member: Conv1D {cnn.get('filters')} filters, kernels {cnn.get('kernels')}, `{cnn.get('padding')}` "
        f"padding, each followed by MaxPool(2) and dropout {cnn.get('dropout')}; Flatten; Dense({cnn.get('dense')}, "
        "relu); Dense(1, sigmoid);",
        *cost_lines(model),
        "- each member ships its sliding form `*.sliding.onnx` (written and checked by `flarelight.trainer.sliding` "
        "against the per-window ONNX, Keras and float64); `FlareModel` runs it by default (`engine=\"auto\"`).", "",
        "## How it was trained", "",
        "    " + rec.get("command", "python -m flarelight.trainer.recipe_v2 --shared ../shared"),
        "    make train-default   # the same", "",
        f"- seeds: data build and split {rec['seed']}; members {rec['seeds']}; up to {rec['epochs']} epochs, batch "
        f"{rec['batch_size']}, early stopping on the validation loss (patience {rec['patience']}, best weights kept);",
        f"- training set: {rec['training_set']['n_windows']} windows ({rec['training_set']['n_positive']} positive), "
        f"sha256 `{rec['training_set']['sha256']}`; {rec['injected_flares']} injected flares (3-2000 x the light "
        "curve's noise, FWHM 2-60 min; the last copy of each light curve on top of one or two impostors; labelled "
        f"{rec.get('injected_label_rule', '[tpeak - 2 FWHM, tpeak + 5 FWHM]')}); "
        f"{hard.get('n_windows')} hard-negative windows from impostor-only copies ({hard.get('per_lc')} per light "
        f"curve, drawn where the impostor is sharpest; impostor seed {hard.get('seed')}; kinds "
        + ", ".join(f"{k} {v}" for k, v in sorted(hard.get("kinds", {}).items())) + ");",
        f"- time on 2 shared cores: building {rec['build_seconds']:.0f} s, training {rec['train_seconds']:.0f} s;",
        "- the recipe is `flarelight/trainer/recipe_v2.py` (it reuses v1's data, split, injection, thinning and "
        "threshold choice from `recipe.py`); the impostors are `flarelight/trainer/impostors.py`.", "",
        "### Split by star (TIC), the same as flarelight-v1's", "",
    ]
    lines += [*split_lines(rec), "", "### Members", "", *members_table(model, rec, sliding=True), "",
              *data_lines(rec), ""]
    if a.bench.exists():
        bench = json.loads(a.bench.read_text())
        lines += [line.replace("(flarelight-v1 and stella's ten models", f"({name} as `flarelight+ours`, the other "
                               "shipped models as `<name>+ours` and stella's ten models")
                  .replace("both run by the flarelight runtime on the same light curves in one run)",
                           "all run by the flarelight runtime on the same light curves in one run"
                           + ("; `altaipony` is AltaiPony in its own venv on the same light curves)"
                              if bench.get("altaipony") else ")"))
                  for line in quality_section(bench)]
        lines += issue11_section(bench)
    if a.find.exists():
        lines += speed_lines(json.loads(a.find.read_text()), name)
    write_card(a.models, lines)


if __name__ == "__main__":
    main()
