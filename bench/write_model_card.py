"""Write models/flarelight-v1/MODEL_CARD.md from the recipe's training.json, the members' hashes and metadata,
and the figures of bench/results/models.json (run bench/bench_models.py first).

    python bench/write_model_card.py [--models models/flarelight-v1] [--bench bench/results/models.json]
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from flarelight.runtime import FlareModel
from flarelight.runtime.atomic import atomic_path
from flarelight.trainer.export import graph_sha256


def fmt(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def quality_section(bench: dict) -> list[str]:
    out = ["## Measured quality", "",
           "Measured by `python bench/bench_models.py` (flarelight-v1 and stella's ten models converted to ONNX, "
           "both run by the flarelight runtime on the same light curves in one run), with the event matching rule "
           "of `../shared/eval/flare_eval.py` (an event overlapping a labelled flare within 2 cadences). "
           "Catalogues are thresholded, so precision on labelled stars is a lower bound.", "",
           "| contender | set | recall | precision | F1 |", "|---|---|---|---|---|"]
    for c, d in bench["detection"].items():
        for name, key in (("labelled test stars", "test"), ("full dev manifest", "full")):
            r = d.get(key)
            if r:
                out.append(f"| {c} | {name} | {fmt(r['recall'])} | {fmt(r['precision'])} | {fmt(r['f1'])} |")
    out += ["", "| contender | FP/day, flare-free stars | FP/day, flare-free test stars | worst star (FP/day) |",
            "|---|---|---|---|"]
    for c, d in bench["detection"].items():
        q, qt = d.get("negative_flare_free") or {}, d.get("negative_flare_free_test") or {}
        per = [r for r in d.get("per_star", []) if r.get("fp_per_day") is not None
               and (r["status"] == "negative" or r.get("category") == "EB")]
        worst = max(per, key=lambda r: r["fp_per_day"]) if per else None
        w = f"TIC {worst['tic']} ({worst['fp_per_day']:.2f})" if worst else "–"
        out.append(f"| {c} | {fmt(q.get('fp_per_day'))} | {fmt(qt.get('fp_per_day'))} | {w} |")
    out += ["", "Targets (issue 6):", ""]
    for t in bench.get("targets", []):
        out.append(f"- {t.get('contender', '')}: {t['target']}: {fmt(t['value'], 3)} "
                   f"({'pass' if t['pass'] else 'FAIL, by ' + fmt(t.get('misses_by'), 3)})")
    comp = bench["injection"]["completeness"]
    names = list(comp)
    out += ["", f"Injection-recovery: {bench['injection']['n_flares']} Davenport flares injected into flare-free light "
            "curves of held-out stars (recovered = an event overlaps [tpeak - FWHM, tpeak + 3 FWHM] within 2 cadences); "
            "completeness (number injected) by SNR = peak amplitude / point-to-point noise, and by equivalent duration:", ""]
    for key, title in (("snr", "SNR"), ("ed_s", "ED [s]")):
        edges = comp[names[0]][key]["edges"]
        out.append(f"| {title} | " + " | ".join(names) + " |")
        out.append("|---|" + "---|" * len(names))
        for i in range(len(edges) - 1):
            if not comp[names[0]][key]["n"][i]:
                continue
            out.append(f"| {edges[i]:g}-{edges[i + 1]:g} | " + " | ".join(
                f"{fmt(comp[n][key]['completeness'][i])} ({comp[n][key]['n'][i]})" for n in names) + " |")
        out.append("")
    out.append("| overall | " + " | ".join(names) + " |")
    out.append("|---|" + "---|" * len(names))
    for key, title in (("overall", "all"), ("near_gap_overall", "within 100 cadences of a gap/edge"),
                       ("far_from_gap_overall", "far from gaps")):
        out.append(f"| {title} | " + " | ".join(fmt(comp[n][key]) for n in names) + " |")
    return out


def split_lines(rec: dict) -> list[str]:
    """The split by star and what was left out, from a model's training.json."""
    out = [f"- **{sp}** ({len(rec['split'][sp])} stars): " + ", ".join(str(t) for t in rec["split"][sp])
           for sp in ("train", "val", "test")]
    return out + ["", f"Left out (they flare but carry no labels): TIC {', '.join(map(str, rec['excluded_tics']))}; "
                  "files " + ", ".join(rec["excluded_files"]) + "."]


def members_table(model: FlareModel, rec: dict, *, sliding: bool = False) -> list[str]:
    """One row per member: file, id, seed, epochs, sha256 of the file and of its weights (and of its sliding form)."""
    out = ["| file | member id | seed | epochs (best) | sha256 | weights sha256 |"
           + (" sliding graph sha256 |" if sliding else ""), "|---" * (7 if sliding else 6) + "|"]
    by_seed = {m["seed"]: m for m in rec["members"]}
    for mem in model.members:
        p, meta = mem.path, mem.metadata
        m = by_seed.get(meta.seed, {})
        row = (f"| {p.name} | {meta.model_id} | {meta.seed} | {m.get('epochs_run')} ({m.get('best_epoch')}) | "
               f"`{hashlib.sha256(p.read_bytes()).hexdigest()}` | `{graph_sha256(p)}` |")
        if sliding:
            sl = p.with_name(p.stem + ".sliding.onnx")
            row += f" `{hashlib.sha256(sl.read_bytes()).hexdigest() if sl.exists() else '-'}` |"
        out.append(row)
    return out


def data_lines(rec: dict) -> list[str]:
    """The data a model was trained on (files and catalogues, read in place from ../shared) with their sha256."""
    out = ["### Data (read in place from `../shared`; sha256)", "", "| file | TIC | kind | split | sha256 |",
           "|---|---|---|---|---|"]
    out += [f"| {f['file']} | {f['tic']} | {f['kind']} | {f['split']} | `{f['sha256'][:16]}…` |" for f in rec["files"]]
    out += [f"| data/catalogs/{c['file']} | – | catalogue | – | `{c['sha256'][:16]}…` |" for c in rec["catalogs"]]
    return out


def card_inputs(description: str, models: str, **paths: str) -> tuple[argparse.Namespace, dict, FlareModel]:
    """A model card's options (--models, --bench and ``paths``: more path options by name, with their defaults), the
    recipe's training.json and the model."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--models", type=Path, default=Path(models))
    ap.add_argument("--bench", type=Path, default=Path("bench/results/models.json"))
    for name, default in paths.items():
        ap.add_argument(f"--{name}", type=Path, default=Path(default))
    a = ap.parse_args()
    return a, json.loads((a.models / "training.json").read_text()), FlareModel(a.models)


def write_card(models: Path, lines: list[str]) -> None:
    """Write ``models``/MODEL_CARD.md atomically and say so."""
    with atomic_path(models / "MODEL_CARD.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print(f"wrote {models / 'MODEL_CARD.md'}")


def main() -> None:
    a, rec, model = card_inputs(__doc__.split("\n")[0], "models/flarelight-v1")
    pre = model.preprocessing
    restamps = rec.get("restamps", [])
    trained_gap = restamps[0]["members"][0]["gap_tolerance"][0] if restamps else None
    lines = [
        "# flarelight-v1", "",
        "flarelight's previous default ensemble (the default until flarelight-v2; load it with "
        "`FlareModel.named(\"flarelight-v1\")`): " + f"{model.n_models} CNNs with stella's architecture (Feinstein et al. 2020), "
        "trained by `flarelight.trainer` on the real labelled TESS light curves of `../shared/data` plus injected "
        "synthetic flares and impostors, exported to ONNX and checked against Keras.", "",
        "## Use", "",
        "    from flarelight.runtime import FlareModel, find_flares",
        "    model = FlareModel.default()            # these files",
        "    table = find_flares(\"tess..._lc.fits\", model=model)", "",
        "## Preprocessing (in every member's ONNX metadata)", "",
        f"- 2-minute cadence ({pre.cadence_s:.0f} s); quality bitmask {pre.quality_bitmask} (lightkurve's default);",
        f"- flux divided by its median, then per window: minus the window's median, divided by the light curve's "
        f"robust point-to-point noise, arcsinh-compressed (`{pre.normalisation}`);",
        f"- windows of {pre.window} cadences, the window of cadence i = flux[i-{pre.offset}:i+{pre.window - pre.offset}];",
        f"- segments split where a step exceeds {pre.gap_tolerance} x the median cadence (a gap of three or more "
        "missing cadences splits, two or fewer are bridged; half a cadence from either, so timing jitter never "
        "decides)" + (f"; the members were trained with {trained_gap} and re-stamped (see Changes below)"
                      if trained_gap is not None and trained_gap != pre.gap_tolerance else "") + ";",
        f"- edge mode `{pre.edge_mode}`: a second input channel flags real cadences (1) and padding (0), so every kept "
        "cadence is scored, including the ones within 100 cadences of a gap or edge that stella cannot score; "
        "flares there are flagged `near_gap`/`near_edge` in the catalogue.",
        f"- recommended catalogue threshold {model.threshold:.2f}, chosen on the validation stars (event-level F1; "
        "scan in `training.json`).", "",
        "## How it was trained", "",
        "    " + rec.get("command", "python -m flarelight.trainer.recipe --shared ../shared --out models/flarelight-v1"),
        "    python -m flarelight.trainer.recipe --shared ../shared --out models/flarelight-v1 --finalize-only  # threshold", "",
        f"- seeds: data build and split {rec['seed']}; members {rec['seeds']}; up to {rec['epochs']} epochs, "
        f"batch {rec['batch_size']}, early stopping on the validation loss (patience {rec['patience']}, best weights kept);",
        f"- training set: {rec['training_set']['n_windows']} windows ({rec['training_set']['n_positive']} positive), "
        f"sha256 `{rec['training_set']['sha256']}`; {rec['injected_flares']} injected flares; at most "
        f"{rec.get('max_positive_windows_per_flare')} positive windows per flare, {rec['negatives_per_positive']} negatives per positive;",
        f"- time on 2 shared cores: building {rec['build_seconds']:.0f} s, training {rec['train_seconds']:.0f} s;",
        "- the recipe (what data, which labels, the injection and impostor distributions, why some stars are left out) "
        "is documented in `flarelight/trainer/recipe.py`.", "",
        "### Split by star (TIC)", "",
    ]
    lines += [*split_lines(rec), "", "### Members", "",
              "The file sha256 covers the metadata too; the weights sha256 is that of the model without its metadata "
              "(`flarelight.trainer.export.graph_sha256`), which a metadata re-stamp leaves unchanged.", "",
              *members_table(model, rec), "", *data_lines(rec), ""]
    if restamps:
        lines += ["## Changes", ""]
        for r in restamps:
            m0 = r["members"][0]
            lines.append(f"- {r['date']}: {r['what']} (`python -m flarelight.trainer.restamp`): member ids "
                         f"`{m0['model_id'][0]}` -> `{m0['model_id'][1]}` (and likewise for every member), gap "
                         f"tolerance {m0['gap_tolerance'][0]} -> {m0['gap_tolerance'][1]}. {r.get('note', '')}".rstrip())
        lines.append("")
    if a.bench.exists():
        lines += quality_section(json.loads(a.bench.read_text()))
    write_card(a.models, lines)


if __name__ == "__main__":
    main()
