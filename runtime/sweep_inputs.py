"""The inputs of a bulk run: files, folders, globs and ``@list.txt``; which are done already."""
from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterable

from .errors import BulkInputError
from .sweep_names import FITS_SUFFIXES, catalogue_name, output_stem, probabilities_name

_GLOB_CHARS = set("*?[")


def _is_fits(name: str) -> bool:
    return name.lower().endswith(FITS_SUFFIXES)


def _folder_files(folder: Path) -> list[str]:
    """FITS files below ``folder`` (recursive; hidden files and folders skipped), sorted."""
    found = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, n) for n in names if _is_fits(n) and not n.startswith("."))
    return sorted(found)


def _expand_one(item: str, where: str) -> list[str]:
    if os.path.isdir(item):
        files = _folder_files(Path(item))
        if not files:
            raise BulkInputError(f"{where}{item}: a folder with no FITS files ({', '.join(FITS_SUFFIXES)}) in it")
        return files
    if _GLOB_CHARS & set(item) and not os.path.exists(item):
        matches = sorted(glob.glob(item, recursive=True))
        files = [f for m in matches for f in (_folder_files(Path(m)) if os.path.isdir(m) else [m])]
        if not files:
            raise BulkInputError(f"{where}{item}: no file matches this pattern (quote it so that flarelight, "
                                 "not the shell, expands it; '**' matches any depth of folders)")
        return files
    return [item]  # a file, or a missing one: reported as that file's error row


def expand_inputs(items: Iterable[str | os.PathLike]) -> list[str]:
    """Input files from files, folders (searched recursively for FITS files), glob patterns (``**`` for any
    depth) and ``@list.txt`` (one file, folder or pattern per line; blank lines and ``#`` comments skipped;
    relative paths from the current folder). The same path given twice is kept once, in first-seen order.

    Raises
    ------
    BulkInputError
        A folder without FITS files, a pattern that matches nothing, an unreadable list.
    """
    out: list[str] = []
    for item in items:
        item = os.fspath(item)
        if item.startswith("@"):
            listing = item[1:]
            try:
                lines = Path(listing).read_text().splitlines()
            except OSError as exc:
                raise BulkInputError(f"{item}: cannot read the list of inputs ({exc.strerror or exc})") from exc
            for n, line in enumerate(lines, 1):
                line = line.strip()
                if line and not line.startswith("#"):
                    out.extend(_expand_one(line, f"{listing}:{n}: "))
        else:
            out.extend(_expand_one(item, ""))
    seen: set[str] = set()
    unique = []
    for f in out:
        key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def check_unique_outputs(files: list[str]) -> None:
    """Refuse two inputs that would write the same catalogue (same name in different folders)."""
    first: dict[str, str] = {}
    clashes = []
    for f in files:
        name = catalogue_name(f)
        if name in first:
            clashes.append((first[name], f))
        else:
            first[name] = f
    if clashes:
        a, b = clashes[0]
        more = f" (and {len(clashes) - 1} more pair(s))" if len(clashes) > 1 else ""
        raise BulkInputError(f"{a} and {b} would both write {catalogue_name(a)}{more}: one output folder "
                             "holds one catalogue per file name; run them into separate --out-dir folders")


def is_done(file: str, out_dir: Path, write_probabilities: bool) -> bool:
    """A file is done when its catalogue exists (and its probabilities, when they are asked for)."""
    return (out_dir / catalogue_name(file)).is_file() and \
        (not write_probabilities or (out_dir / probabilities_name(file)).is_file())


def remove_stale_temporaries(out_dir: Path, files: list[str]) -> int:
    """Delete temporaries that a killed run left for these inputs (``.<stem>.flares.*.part.ecsv`` and the
    like, see :func:`flarelight.runtime.atomic.atomic_path`); returns how many."""
    stems = {output_stem(f) for f in files}
    removed = 0
    with os.scandir(out_dir) as it:
        for e in it:
            if not (e.name.startswith(".") and ".part." in e.name):
                continue
            base = e.name[1:].split(".part.")[0].rsplit(".", 1)[0]  # ".X.flares.abc123" -> "X.flares"
            for suffix in (".flares", ".prob"):
                if base.endswith(suffix) and base[: -len(suffix)] in stems:
                    os.unlink(e.path)
                    removed += 1
                    break
    return removed
