import numpy as np
import pytest
from scipy import linalg

from avdit.eval.metrics import StreamingStats, frechet_distance, frechet_from_stats, kid_subsets, polynomial_mmd2


def test_streaming_stats_equal_numpy():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(1000, 6)) @ rng.normal(size=(6, 6)) + 3
    stats = StreamingStats(6)
    for chunk in np.array_split(data, 7):
        stats.update(chunk)
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(data, rowvar=False), rtol=1e-9, atol=1e-12)


def test_frechet_matches_the_closed_form_for_two_gaussians():
    # diagonal covariances: ||mu1 - mu2||^2 + sum (s1 - s2)^2 over standard deviations
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([2.0, 2.0, 1.5])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_matches_a_sqrtm_reference_on_random_data_and_is_zero_on_itself():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 8)), rng.normal(size=(500, 8)) * 1.3 + 0.2
    mu1, mu2, c1, c2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    s1 = linalg.sqrtm(c1)
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * np.real(linalg.sqrtm(s1 @ c2 @ s1)))
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(reference, rel=1e-8)
    sa = StreamingStats(8)
    sa.update(a)
    assert abs(frechet_from_stats(sa, sa)) < 1e-8


def test_polynomial_mmd_is_unbiased_and_matches_a_loop():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(40, 4)) + 0.5
    k = lambda a, b: (a @ b / 4 + 1) ** 3  # noqa: E731
    xx = np.mean([k(x[i], x[j]) for i in range(30) for j in range(30) if i != j])
    yy = np.mean([k(y[i], y[j]) for i in range(40) for j in range(40) if i != j])
    xy = np.mean([k(x[i], y[j]) for i in range(30) for j in range(40)])
    assert polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    same = [polynomial_mmd2(rng.normal(size=(200, 4)), rng.normal(size=(200, 4))) for _ in range(20)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(20)  # unbiased: centred on zero
    mean, std = kid_subsets(x, y, subsets=10, subset_size=20)
    assert mean > 0 and std >= 0
