"""The split by star: every window (and every light curve) of a star lands in one of train, val, test.

One rule for ``flarelight train`` and the flarelight-v1 recipe: stars named in ``fixed`` keep their split;
the others are shuffled (seeded) and dealt in proportion to ``fractions`` by number of stars. The train and
val counts are ``round(fraction x n)`` and test takes the rest; every split with a non-zero fraction gets at
least one star when there are enough. With the flaring stars given, stars with and without flares are dealt
separately, so every split gets flaring stars when there are enough.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from .trainingset import SPLITS, TrainingDataError


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, float)
    if f.size != 3 or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise TrainingDataError(f"fractions={tuple(fractions)}: need three non-negative numbers summing to 1")
    return f


def deal_counts(n: int, fractions: Sequence[float], ensure: bool = True) -> np.ndarray:
    """How many of ``n`` stars go to train, val, test: ``round(f x n)`` for train and val, the rest to test.

    With ``ensure``, each non-zero fraction gets at least one star, taken from the largest split.
    """
    f = _check_fractions(fractions)
    n_train = min(int(round(f[0] * n)), n)
    n_val = min(int(round(f[1] * n)), n - n_train)
    out = np.array([n_train, n_val, n - n_train - n_val], int)
    if ensure:
        for i in np.flatnonzero((f > 0) & (out == 0)):
            j = int(np.argmax(out))
            if out[j] > 1:
                out[j] -= 1
                out[i] += 1
    return out


def assign_stars(stars: Iterable[int], fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0, *,
                 flaring: Iterable[int] | None = None, fixed: Mapping[int, str] | None = None) -> dict[int, str]:
    """The split of every star: ``{tic: "train" | "val" | "test"}``.

    Parameters
    ----------
    stars : iterable of int
        Star ids (repeats allowed); -1 (unknown) is not.
    fractions : (train, val, test)
    seed : int
    flaring : iterable of int, optional
        Stars with at least one positive window: dealt apart from the others.
    fixed : mapping, optional
        Stars whose split is set in advance (e.g. held-out test stars); not dealt.

    Raises
    ------
    TrainingDataError
        Unknown stars, bad fractions, an unknown split name in ``fixed``, or fewer stars than non-empty splits.
    """
    f = _check_fractions(fractions)
    fixed = {int(k): v for k, v in (fixed or {}).items()}
    bad = set(fixed.values()) - set(SPLITS)
    if bad:
        raise TrainingDataError(f"fixed split names {sorted(bad)}: use {SPLITS}")
    all_stars = np.unique(np.asarray(list(stars), np.int64))
    if np.any(all_stars < 0):
        raise TrainingDataError("some windows have no star id (-1): a by-star split needs every window's star")
    need = int(np.sum(f > 0))
    if all_stars.size < need:
        raise TrainingDataError(f"{all_stars.size} distinct star(s) for {need} non-empty splits: a by-star split "
                                "needs at least one star per split; add stars or set a fraction to 0")
    rest = np.setdiff1d(all_stars, np.fromiter(fixed, np.int64, len(fixed)))
    groups = [rest]
    if flaring is not None:
        fl = np.intersect1d(rest, np.asarray(list(flaring), np.int64))
        if fl.size >= need:
            groups = [fl, np.setdiff1d(rest, fl)]
    rng = np.random.default_rng(seed)
    out = dict(fixed)
    for gi, g in enumerate(groups):
        g = rng.permutation(g)
        counts = deal_counts(g.size, f, ensure=(gi == 0))
        k = 0
        for name, cnt in zip(SPLITS, counts):
            for star in g[k:k + cnt]:
                out[int(star)] = name
            k += cnt
    return out


def split_by_star(star_ids: np.ndarray, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                  y: np.ndarray | None = None, fixed: Mapping[int, str] | None = None) -> np.ndarray:
    """Assign every window to "train", "val" or "test" so that all windows of a star share one split.

    Parameters
    ----------
    star_ids : array of int, shape (n,)
        Star of each window; -1 (unknown) is not allowed.
    fractions : (train, val, test)
    seed : int
    y : array, shape (n,), optional
        Labels: stars with a positive window are dealt apart from the others (see :func:`assign_stars`).
    fixed : mapping, optional
        Stars whose split is set in advance.

    Returns
    -------
    ndarray of str, shape (n,)
    """
    star_ids = np.asarray(star_ids, np.int64).reshape(-1)
    flaring = None if y is None else np.unique(star_ids[np.asarray(y).reshape(-1) > 0.5])
    assign = assign_stars(star_ids, fractions, seed, flaring=flaring, fixed=fixed)
    return np.array([assign[int(s)] for s in star_ids], dtype="<U5")


__all__ = ["split_by_star", "assign_stars", "deal_counts"]
