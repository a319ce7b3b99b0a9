"""``flarelight models``: the shipped models, by name, with their model cards' summaries."""
from __future__ import annotations

import click


@click.command()
@click.argument("name", required=False)
def models(name):
    """List the shipped models (NAME: print that model's card).

    Use a name with `--model NAME` on any command, or `FlareModel.named(NAME)` in Python.
    """
    from flarelight.models import DEFAULT_MODEL, card_summary, model_card, model_paths, shipped_models

    if name:
        try:
            click.echo(model_card(name))
        except Exception as exc:
            raise click.ClickException(str(exc)) from exc
        return
    for model in shipped_models():
        members = model_paths(model)
        sliding = sum(p.with_name(p.stem + ".sliding.onnx").exists() for p in members)
        tag = " (default)" if model == DEFAULT_MODEL else ""
        click.echo(f"{model}{tag}: {len(members)} member(s), sliding form for {sliding}")
        click.echo(f"    {card_summary(model)}")
