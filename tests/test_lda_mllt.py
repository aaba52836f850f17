"""The aligner's feature transforms on synthetic classes: LDA finds the directions that separate them, MLLT
makes diagonal Gaussians fit correlated classes better."""

from __future__ import annotations

import numpy as np

from tasks.align.gmm_aligner import lda, mllt


def _diagonal_loglike(x: np.ndarray, y: np.ndarray, a: np.ndarray) -> float:
    """Mean log-likelihood per frame of ``x @ a.T`` under one diagonal Gaussian per class, with log|det a|."""
    z = x @ a.T
    total = 0.0
    for c in np.unique(y):
        rows = z[y == c]
        var = rows.var(0)
        total += -0.5 * np.sum(len(rows) * (np.log(2 * np.pi * var) + 1))
    return total / len(x) + float(np.log(abs(np.linalg.det(a))))


def test_lda_keeps_the_separating_directions_and_whitens_within_classes() -> None:
    rng = np.random.default_rng(0)
    means = np.zeros((4, 6))
    means[:, 0] = [-6, -2, 2, 6]  # only the first axis tells the classes apart
    y = np.repeat(np.arange(4), 500)
    x = means[y] + rng.normal(size=(len(y), 6)) * [1, 3, 3, 3, 3, 3]
    w = lda([x], [y], 1)
    assert abs(w[0, 0]) / np.abs(w[:, 0]).sum() > 0.95
    projected = x @ w
    within = np.mean([projected[y == c].var() for c in range(4)])
    assert abs(within - 1) < 0.1


def test_mllt_fits_correlated_classes_better_than_no_rotation() -> None:
    rng = np.random.default_rng(1)
    rotation = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    y = np.repeat(np.arange(6), 400)
    scales = np.array([3.0, 1.0, 0.5, 2.0, 0.3])
    x = (rng.normal(size=(len(y), 5)) * scales) @ rotation.T + rng.normal(size=(6, 5))[y] * 4
    a = mllt(x, y)
    assert _diagonal_loglike(x, y, a) > _diagonal_loglike(x, y, np.eye(5)) + 0.5
    assert np.isfinite(a).all()
