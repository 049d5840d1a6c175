"""Distribution metrics as pure functions over features (float64): Fréchet distance, KVD/KID (polynomial MMD).

FAD and FVD are the Fréchet distance between Gaussians fitted to features of real and generated clips;
KVD (as in MM-Diffusion's evaluator) and KID are the unbiased MMD^2 with k(x, y) = (x . y / d + 1)^3.
Statistics accumulate in streaming form, so N can be large.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg


@dataclass
class StreamingStats:
    """Running count, sum and sum of outer products of feature vectors (float64)."""

    dim: int
    count: int = 0
    total: np.ndarray = field(init=False)
    outer: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.total = np.zeros(self.dim)
        self.outer = np.zeros((self.dim, self.dim))

    def update(self, features: np.ndarray) -> None:
        features = np.asarray(features, dtype=np.float64).reshape(-1, self.dim)  # (n, d)
        self.count += features.shape[0]
        self.total += features.sum(axis=0)
        self.outer += features.T @ features

    @property
    def mean(self) -> np.ndarray:
        return self.total / self.count

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance (n - 1)."""
        if self.count < 2:
            raise ValueError("a covariance needs at least 2 feature vectors")
        return (self.outer - self.count * np.outer(self.mean, self.mean)) / (self.count - 1)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)) (Dowson & Landau; Heusel et al.)."""
    diff = mu1 - mu2
    with warnings.catch_warnings():  # fewer samples than dimensions make a singular product: handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(root).all():  # regularise as the FID reference code does
            offset = np.eye(cov1.shape[0]) * 1e-6
            root = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    root = np.real(root)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root))


def frechet_from_stats(a: StreamingStats, b: StreamingStats) -> float:
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3) -> float:
    """Unbiased MMD^2 with the kernel (x . y / d + 1)^degree (KID, and MM-Diffusion's KVD)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** degree
    kyy = (y @ y.T / d + 1) ** degree
    kxy = (x @ y.T / d + 1) ** degree
    m, n = x.shape[0], y.shape[0]
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid_subsets(x: np.ndarray, y: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of polynomial MMD^2 over random equal-size subsets (as KID reports)."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(x), len(y))
    values = [polynomial_mmd2(x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))
