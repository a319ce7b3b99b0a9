"""The flarelight exception hierarchy.

Every error says what was found and what to do. Batch code turns these into
per-file error records (see :mod:`flarelight.runtime.bulk`); nothing swallows them.
"""
from __future__ import annotations


class FlarelightError(Exception):
    """Base class of every error flarelight raises on purpose."""


class LightCurveReadError(FlarelightError, OSError):
    """A file could not be read as a light curve (missing, truncated, corrupted, not a light curve)."""


class CorruptFileError(LightCurveReadError):
    """A file that parses but is damaged: a failing FITS checksum, or impossible values (e.g. zeroed TIME)."""


class MissingColumnError(LightCurveReadError, KeyError):
    """A light-curve table lacks a column flarelight needs."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class InvalidLightCurveError(FlarelightError, ValueError):
    """Light-curve arrays that cannot be scored as given (shape, dtype, order, values)."""


class AllNaNError(InvalidLightCurveError):
    """No finite flux is left after masking."""


class TooShortError(InvalidLightCurveError):
    """Fewer good cadences than one model window."""


class UnsortedTimeError(InvalidLightCurveError):
    """Time stamps are not increasing."""


class DuplicateTimeError(InvalidLightCurveError):
    """Two cadences share one time stamp."""


class NonPositiveMedianError(InvalidLightCurveError):
    """The median flux is zero or negative, so median normalisation is meaningless."""


class ModelFileError(FlarelightError):
    """An ONNX model file is missing, unreadable, or not a flarelight model."""


class BulkInputError(FlarelightError, ValueError):
    """The inputs of a bulk run cannot be processed as given (no files, two inputs with one output name)."""


class SchedulerError(FlarelightError, OSError):
    """A Dask scheduler could not be reached (or dask.distributed is missing)."""


class WorkerDiedError(FlarelightError):
    """A bulk worker process died while processing a file (recorded in the run table, never raised)."""


__all__ = [
    "FlarelightError",
    "LightCurveReadError",
    "CorruptFileError",
    "MissingColumnError",
    "InvalidLightCurveError",
    "AllNaNError",
    "TooShortError",
    "UnsortedTimeError",
    "DuplicateTimeError",
    "NonPositiveMedianError",
    "ModelFileError",
    "BulkInputError",
    "SchedulerError",
    "WorkerDiedError",
]
