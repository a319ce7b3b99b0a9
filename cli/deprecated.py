"""Deprecated option names kept for one release (``-c/--catalog``, ``-o`` for a folder): merged into the new
option with a warning on stderr."""
from __future__ import annotations

from typing import Any

import click


def merge_alias(new: Any, old: Any, new_name: str, old_name: str) -> Any:
    """The value of option ``new_name``, or of its deprecated alias ``old_name`` (with a warning).

    Multiple-valued options (tuples) are concatenated; for single values, giving both is an error.
    """
    if not old:
        return new
    click.echo(f"warning: {old_name} is deprecated and goes in the next release; use {new_name}", err=True)
    if isinstance(old, tuple):
        return tuple(new or ()) + old
    if new:
        raise click.UsageError(f"give {new_name} or its deprecated alias {old_name}, not both")
    return old
