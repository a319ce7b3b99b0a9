"""stella's 1-D CNN (Feinstein et al. 2020), layer sizes configurable."""
from __future__ import annotations

from typing import Sequence

from flarelight.runtime.errors import FlarelightError


class ModelConfigError(FlarelightError, ValueError):
    """Layer sizes that do not make a valid network."""


def build_cnn(window: int = 200, n_channels: int = 1, *, filters: Sequence[int] = (16, 64),
              kernels: Sequence[int] = (7, 3), dense: int = 32, dropout: float = 0.1, learning_rate: float = 1e-3,
              seed: int | None = None, name: str = "flarelight_cnn", padding: str = "same"):
    """Build and compile stella's architecture.

    Conv1D(filters[i], kernels[i], relu, padding) -> MaxPool1D(2) -> Dropout(dropout) for each conv block, then
    Flatten -> Dense(dense, relu) -> Dropout(dropout) -> Dense(1, sigmoid). Adam, binary cross-entropy.
    The defaults are stella's published model (105,729 parameters for window 200, one channel).

    Parameters
    ----------
    window, n_channels : int
        Input shape ``(window, n_channels)``; take both from the :class:`~flarelight.runtime.metadata.Preprocessing`
        (2 channels in "pad" edge mode).
    filters, kernels : sequences of int
        One conv block per entry (same length).
    dense : int
        Units of the hidden dense layer.
    dropout : float
    learning_rate : float
    seed : int, optional
        Seeds the weight initialisers and dropout.
    padding : {"same", "valid"}
        Convolution padding (stella: "same"). "valid" networks have no window-edge terms in their sliding form
        (:mod:`flarelight.trainer.sliding`), so it is plain shift-and-stitch.

    Returns
    -------
    keras.Model
    """
    import keras
    from keras import layers

    filters, kernels = list(filters), list(kernels)
    if len(filters) != len(kernels) or not filters:
        raise ModelConfigError(f"filters={filters} and kernels={kernels}: need the same non-zero number of entries")
    if any(int(v) < 1 for v in filters + kernels + [dense]) or not (0 <= dropout < 1):
        raise ModelConfigError(f"filters={filters}, kernels={kernels}, dense={dense}, dropout={dropout}: "
                               "sizes must be >= 1 and 0 <= dropout < 1")
    if padding not in ("same", "valid"):
        raise ModelConfigError(f"padding={padding!r}: choose 'same' or 'valid'")
    n = int(window)
    for k in kernels:
        n = (n - (int(k) - 1 if padding == "valid" else 0)) // 2
    if n < 1:
        raise ModelConfigError(f"window={window} is too short for {len(filters)} pooling layers")

    def init(i: int):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + i)

    inp = keras.Input(shape=(int(window), int(n_channels)), name="window")
    x = inp
    for i, (f, k) in enumerate(zip(filters, kernels)):
        x = layers.Conv1D(int(f), int(k), activation="relu", padding=padding, kernel_initializer=init(i))(x)
        x = layers.MaxPooling1D(pool_size=2)(x)
        x = layers.Dropout(dropout, seed=None if seed is None else seed + 100 + i)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(int(dense), activation="relu", kernel_initializer=init(50))(x)
    x = layers.Dropout(dropout, seed=None if seed is None else seed + 200)(x)
    out = layers.Dense(1, activation="sigmoid", kernel_initializer=init(51))(x)
    model = keras.Model(inp, out, name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="binary_crossentropy",
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.Precision(name="precision"),
                           keras.metrics.Recall(name="recall")])
    return model


__all__ = ["build_cnn", "ModelConfigError"]
