"""FITS checksums (the CHECKSUM/DATASUM convention), computed with numpy.

An intact HDU whose header carries ``CHECKSUM`` sums to ``-0`` (all 32 bits set) under 32-bit
ones'-complement addition of its big-endian words, header and data together; ``DATASUM`` (when present)
is the ones'-complement sum of the data part alone. SPOC light curves carry ``CHECKSUM`` without
``DATASUM``, so astropy's ``checksum=True`` warns on every intact file; this module checks each HDU as
the convention defines it instead.
"""
from __future__ import annotations

import numpy as np

#: the ones'-complement sum of an intact HDU with a CHECKSUM card
NEGATIVE_ZERO = 0xFFFFFFFF
#: words summed per numpy call (bounds the uint64 temporary to 8 MB)
_CHUNK = 1 << 20


def ones_complement_sum(words: np.ndarray) -> int:
    """32-bit ones'-complement sum of big-endian uint32 words (end-around carry), as an int.

    Each chunk of 2**20 words sums exactly in uint64 (at most 2**52), then the carries are folded back.
    """
    total = 0
    for start in range(0, words.size, _CHUNK):
        total += int(words[start:start + _CHUNK].sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def hdu_sums(raw: np.ndarray, header_start: int, data_start: int, data_end: int) -> tuple[int, int]:
    """Ones'-complement sums of one HDU: (header and data, data alone).

    Parameters
    ----------
    raw : ndarray of uint8
        The whole file (e.g. a read-only ``np.memmap``).
    header_start, data_start, data_end : int
        Byte offsets of the HDU's header, its data, and the end of its padded data (multiples of 4).
    """
    if header_start % 4 or data_start % 4 or data_end % 4:
        raise ValueError(f"HDU offsets {header_start}, {data_start}, {data_end} are not multiples of 4 bytes")
    header = ones_complement_sum(raw[header_start:data_start].view(">u4"))
    data = ones_complement_sum(raw[data_start:data_end].view(">u4"))
    both = header + data
    while both >> 32:
        both = (both & 0xFFFFFFFF) + (both >> 32)
    return both, data


def checksum_problem(raw: np.ndarray, header: dict, header_start: int, data_start: int, data_end: int
                     ) -> str | None:
    """Why one HDU fails its checksum, or None when it passes (or carries no CHECKSUM/DATASUM card).

    ``header`` needs only the ``CHECKSUM`` and ``DATASUM`` cards (absent or empty: not checked).
    """
    has_checksum = bool(str(header.get("CHECKSUM") or "").strip())
    datasum = str(header.get("DATASUM") or "").strip()
    if not has_checksum and not datasum:
        return None
    both, data = hdu_sums(raw, header_start, data_start, data_end)
    if datasum:
        try:
            expected = int(datasum)
        except ValueError:
            return f"DATASUM card {datasum!r} is not a number"
        if expected != data:
            return f"data checksum {data} differs from DATASUM {expected} (the data were changed)"
    if has_checksum and both != NEGATIVE_ZERO:
        return f"CHECKSUM fails (ones'-complement sum {both:#010x}, an intact HDU gives 0xffffffff)"
    return None
