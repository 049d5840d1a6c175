import math

import pytest
import torch

from avdit.diffusion import NoiseSchedule, predict_x0, q_sample
from avdit.diffusion.schedule import DEFAULT_SCHEDULE


def test_linear_schedule_values():
    s = NoiseSchedule.linear()
    assert s.T == 1000 and s.alphas_cumprod[0] == 1.0
    assert math.isclose(s.alphas_cumprod[1].item(), 1 - 1e-4, rel_tol=1e-12)
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    assert math.isclose(s.alphas_cumprod[-1].item(), math.prod(1 - b for b in betas), rel_tol=1e-9)
    assert bool((s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all())


def test_q_sample_at_t0_returns_x0_exactly(generator):
    x0 = torch.randn(4, 3, 10, generator=generator)
    noise = torch.randn(4, 3, 10, generator=generator) * 1e6
    t = torch.zeros(4, 1, 10, dtype=torch.long)
    t[:, :, 5:] = 500
    out = q_sample(x0, t, noise)
    assert torch.equal(out[..., :5], x0[..., :5])
    assert not torch.equal(out[..., 5:], x0[..., 5:])


@pytest.mark.parametrize("level", [1, 100, 500, 999, 1000])
def test_q_sample_moments_match_the_schedule(level, generator):
    n = 200_000
    x0 = torch.full((n,), 1.5)
    z = q_sample(x0, torch.full((n,), level), torch.randn(n, generator=generator))
    abar = DEFAULT_SCHEDULE.alphas_cumprod[level].item()
    assert abs(z.mean().item() - math.sqrt(abar) * 1.5) < 5 / math.sqrt(n)
    assert abs(z.var().item() - (1 - abar)) < 0.01 * (1 - abar) + 1e-7


def test_predict_x0_inverts_q_sample(generator):
    x0 = torch.randn(2, 50, generator=generator, dtype=torch.float64)
    noise = torch.randn(2, 50, generator=generator, dtype=torch.float64)
    t = torch.randint(0, 1001, (2, 50), generator=generator)
    torch.testing.assert_close(predict_x0(q_sample(x0, t, noise), t, noise), x0)


def test_levels_outside_the_schedule_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1000\]"):
        DEFAULT_SCHEDULE.alpha_bar(torch.tensor([1001]))
    with pytest.raises(TypeError, match="integers"):
        DEFAULT_SCHEDULE.alpha_bar(torch.tensor([0.5]))
