"""``flarelight demo``: simulate a light curve, find its flares with the shipped model, print and plot them."""
from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from flarelight.runtime.simulate import simulate_lightcurve

from .options import load_model, model_option, threads_option


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("demo.png"),
              show_default=True, help="Where to write the plot (PNG).")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the simulated light curve.")
@model_option
@threads_option
def demo(output, seed, model_paths, threads):
    """Simulate a 27-day, 2-minute light curve (rotation, noise, gaps, injected flares), find its flares,
    print the flare table next to the injected truth, and write a plot."""
    from flarelight.runtime.find import find_flares

    t0 = time.perf_counter()
    lc, truth = simulate_lightcurve(seed=seed, n_flares=8)
    model = load_model(model_paths, threads)
    click.echo(f"model: {model.model_id} (window {model.preprocessing.window}, "
               f"edge mode {model.preprocessing.edge_mode}, engine {model.engine})")
    click.echo(f"simulated light curve: {len(lc)} cadences, {int(lc.bad.sum())} flagged, "
               f"{len(truth)} injected flares")
    cat = find_flares(lc, model=model, full=True)
    table, prob = cat.table, cat.scored.prob
    click.echo("\ninjected flares (truth):")
    for fl in truth:
        click.echo(f"  tpeak {fl.tpeak:.4f}  amplitude {fl.amplitude:.4f}  FWHM {fl.fwhm * 1440:.1f} min")
    click.echo(f"\nflarelight found {len(table)} flare(s):")
    cols = [c for c in ("tpeak", "tstart", "tstop", "amplitude", "ed", "ed_err", "prob_max", "n_peaks", "near_gap")
            if c in table.colnames]
    click.echo("\n".join(table[cols].pformat(max_lines=-1, max_width=-1)))
    found = sum(any(r["tstart"] - 0.003 <= fl.tpeak <= r["tstop"] + 0.003 for r in table) for fl in truth)
    click.echo(f"\nrecovered {found}/{len(truth)} injected flares; "
               f"{int(np.isfinite(prob).sum())}/{prob.size} cadences scored")
    from flarelight.runtime.plot import plot_flares

    plot_flares(cat, path=output)
    click.echo(f"plot written to {output} ({time.perf_counter() - t0:.1f} s)")
