"""The preprocessing contract a model carries in its ONNX metadata.

The trainer writes it (``metadata_props["flarelight"]``, a JSON object) and the runtime reads it;
nothing about a model's preprocessing is hard-coded in the runtime.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .errors import ModelFileError
from .quality import resolve_bitmask

METADATA_KEY = "flarelight"
FORMAT_VERSION = 1

GAP_RULES = ("tolerance", "stella")
NORMALISATIONS = ("median", "median+window_noise", "baseline+noise")
#: normalisations that give a cadence the same input value in every window (a sliding form can share work)
PER_CADENCE_NORMALISATIONS = ("median", "baseline+noise")
EDGE_MODES = ("valid", "pad")


@dataclass(frozen=True)
class Preprocessing:
    """How a light curve is turned into model windows.

    Attributes
    ----------
    window : int
        Cadences per window (stella: 200).
    offset : int
        Cadences before the centre: the window of cadence ``i`` is ``flux[i - offset : i - offset + window]``
        over the kept cadences (stella: 100, i.e. ``flux[i-100:i+100]``).
    cadence_s : float
        Cadence the model was trained on, seconds.
    normalisation : str
        "median": divide the kept flux by its median over the whole light curve (stella).
        "median+window_noise": then, per window, subtract the median of its real cadences and divide by the
        light curve's robust point-to-point noise, compressed with arcsinh (flarelight-v1): windows in noise
        units, so a 0.2% flare on a bright, spotted star looks like a 10% flare on a faint one.
        "baseline+noise": per cadence, once per light curve (flarelight-v2): divide by the median, subtract a
        running median of ``2 * baseline_half_width + 1`` cadences computed within each segment, divide by the
        light curve's robust point-to-point noise, compress with arcsinh. A cadence has the same input value in
        every window that holds it, so the sliding form shares all work between windows; padding is 0.
    quality_bitmask : int
        Cadences with ``QUALITY & quality_bitmask != 0`` are dropped (stella: every bit, QUALITY == 0).
    gap_rule : str
        "tolerance": a gap is a step longer than ``gap_tolerance`` x the median cadence;
        "stella": a step >= median + ``gap_nsigma`` x std of the steps (stella's rule).
    gap_tolerance : float
        Used by the "tolerance" rule. Default 3.5: up to 2 missing cadences in a row (a step of
        3 cadences) are bridged, as stella does; 3 or more missing cadences (a step of 4) split the segment.
        Half a cadence from both, so sub-second timing jitter never decides.
    gap_nsigma : float
        Used by the "stella" rule.
    baseline_half_width : int
        Half-width (cadences) of the running-median baseline of the "baseline+noise" normalisation.
    edge_mode : str
        "valid": only cadences with a full window inside their segment are scored (stella).
        "pad": the model takes a second input channel (1 = real cadence, 0 = padding) and every kept
        cadence is scored, windows near gaps and edges padded with 1.0 and flagged.
    """

    window: int = 200
    offset: int = 100
    cadence_s: float = 120.0
    normalisation: str = "median"
    quality_bitmask: int = resolve_bitmask("default")
    gap_rule: str = "tolerance"
    gap_tolerance: float = 3.5
    gap_nsigma: float = 1.5
    edge_mode: str = "valid"
    baseline_half_width: int = 60

    def __post_init__(self) -> None:
        if self.window < 2 or not (0 <= self.offset < self.window):
            raise ModelFileError(f"window={self.window}, offset={self.offset}: need window >= 2 and 0 <= offset < window")
        if self.normalisation not in NORMALISATIONS:
            raise ModelFileError(f"normalisation {self.normalisation!r} unknown: this flarelight knows {NORMALISATIONS}")
        if self.gap_rule not in GAP_RULES:
            raise ModelFileError(f"gap_rule {self.gap_rule!r} unknown: this flarelight knows {GAP_RULES}")
        if self.edge_mode not in EDGE_MODES:
            raise ModelFileError(f"edge_mode {self.edge_mode!r} unknown: this flarelight knows {EDGE_MODES}")
        if int(self.baseline_half_width) != self.baseline_half_width or self.baseline_half_width < 1:
            raise ModelFileError(f"baseline_half_width={self.baseline_half_width}: must be a positive integer")
        if self.gap_tolerance <= 1.0:
            raise ModelFileError(f"gap_tolerance={self.gap_tolerance}: must be > 1 (in units of the median cadence)")

    @property
    def n_channels(self) -> int:
        """Input channels the model expects: 1 (flux) or 2 (flux, real-cadence flag) in "pad" mode."""
        return 2 if self.edge_mode == "pad" else 1

    @property
    def per_cadence(self) -> bool:
        """True if a cadence has the same input value in every window (the normalisation is not per window)."""
        return self.normalisation in PER_CADENCE_NORMALISATIONS

    @property
    def pad_value(self) -> float:
        """Flux-channel value of padded cadences in "pad" mode: the normalised baseline (1.0, or 0.0 for
        "baseline+noise")."""
        return 0.0 if self.normalisation == "baseline+noise" else 1.0

    def replace(self, **changes: Any) -> "Preprocessing":
        """A copy with some fields changed."""
        return replace(self, **changes)


#: stella's preprocessing, as stella 0.3.0 ``ConvNN.predict`` applies it to QUALITY == 0 cadences
STELLA_PREPROCESSING = Preprocessing(quality_bitmask=resolve_bitmask("any"), gap_rule="stella")


@dataclass(frozen=True)
class ModelMetadata:
    """Everything a flarelight ONNX file says about itself (immutable: change it with :meth:`replace`).

    ``model_id`` names the member as ``<model name>/s<seed>`` (e.g. ``flarelight-v1/s1000``).
    ``threshold`` is the probability above which the catalogue calls a flare by default (chosen on the
    validation stars for flarelight's models; 0.5 for stella's).
    """

    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    model_id: str = ""
    flarelight_version: str = ""
    input_name: str = "window"
    seed: int | None = None
    threshold: float = 0.5
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        """The name of the model this member belongs to: ``model_id`` up to its ``/``."""
        return self.model_id.split("/", 1)[0]

    def replace(self, **changes: Any) -> "ModelMetadata":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_json(self) -> str:
        """Serialise for ``metadata_props["flarelight"]``."""
        d = asdict(self)
        d["format_version"] = FORMAT_VERSION
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "<metadata>") -> "ModelMetadata":
        """Parse ``metadata_props["flarelight"]``; raise :class:`ModelFileError` naming ``source`` if it is bad."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{source}: flarelight metadata is not valid JSON ({exc}); re-export the model") from exc
        if not isinstance(d, dict):
            raise ModelFileError(f"{source}: flarelight metadata is not a JSON object; re-export the model")
        version = d.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise ModelFileError(
                f"{source}: metadata format_version {version!r}, this flarelight reads {FORMAT_VERSION}; "
                "upgrade flarelight or re-export the model"
            )
        try:
            pre = Preprocessing(**d.pop("preprocessing", {}))
            return cls(preprocessing=pre, **d)
        except TypeError as exc:
            raise ModelFileError(f"{source}: unexpected field in flarelight metadata ({exc})") from exc
