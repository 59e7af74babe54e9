"""Checks shared by the suite tests (a plain module: conftest.py is not importable by name)."""

from __future__ import annotations

import numpy as np


def assert_frame(image: np.ndarray, shape: tuple[int, ...]) -> None:
    """A real picture: the right shape and dtype, and not blank (some contrast)."""
    assert image.shape == shape and image.dtype == np.uint8
    assert image.std() > 10, f"frame looks blank (std {image.std():.1f})"


def closer_to(image: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mean absolute difference of ``image`` to ``reference`` and to ``reference`` upside down."""
    a, b = image.astype(np.float32), reference.astype(np.float32)
    return float(np.abs(a - b).mean()), float(np.abs(a - b[::-1]).mean())


def correlation_upright(image: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Pearson correlation of ``image`` with ``reference`` and with ``reference`` upside down (robust to a
    change of brightness, such as MuJoCo's shadow passes)."""
    a = image.astype(np.float64).ravel()
    return float(np.corrcoef(a, reference.astype(np.float64).ravel())[0, 1]), float(
        np.corrcoef(a, reference[::-1].astype(np.float64).ravel())[0, 1])
