import pytest
import torch

from avdit.diffusion import NoiseLevelError, parse_noise_level_curriculum, parse_noise_levels
from avdit.tasks import get_task


def draw(spec, batch=4000, seed=0):
    sampler = parse_noise_levels(spec, num_segments=5)
    return sampler(batch, torch.Generator().manual_seed(seed))


def tied(t, dims):
    """True per example where t is constant along ``dims``."""
    return (t == t.amax(dim=dims, keepdim=True)).flatten(1).all(1)


@pytest.mark.parametrize(
    "spec, tied_dims, free_dims",
    [("vanilla", (1, 2), None), ("per-modality", (2,), 1), ("per-segment", (1,), 2), ("per-cell", None, (1, 2))],
)
def test_each_strategy_ties_the_right_cells(spec, tied_dims, free_dims):
    t, strategy = draw(spec)
    assert t.shape == (4000, 2, 5) and t.dtype == torch.long
    assert int(t.min()) >= 1 and int(t.max()) <= 1000 and bool((strategy == 0).all())
    if tied_dims is not None:
        assert bool(tied(t, tied_dims).all())
    if free_dims is not None:  # the untied direction really varies (almost surely)
        assert tied(t, free_dims).float().mean() < 0.01
    # each element is uniform on {1..T}
    assert abs(t.float().mean().item() - 500.5) < 10


def test_monl_mixture_picks_each_strategy_uniformly_and_ties_accordingly():
    t, strategy = draw("monl", batch=8000)
    freq = torch.bincount(strategy, minlength=4).float() / 8000
    assert torch.allclose(freq, torch.full((4,), 0.25), atol=0.02)
    assert bool(tied(t[strategy == 0], (1, 2)).all())
    assert bool(tied(t[strategy == 1], (2,)).all())
    assert bool(tied(t[strategy == 2], (1,)).all())


def test_weighted_mixture_frequencies_follow_the_weights():
    sampler = parse_noise_levels("vanilla=0.25,per-cell=0.75", 5)
    assert sampler.strategies == ("vanilla", "per-cell")
    _, strategy = sampler(8000, torch.Generator().manual_seed(1))
    assert abs((strategy == 1).float().mean().item() - 0.75) < 0.02


def test_task_specific_levels_keep_given_cells_clean():
    t, _ = draw("task:av_continue")
    given = get_task("av_continue", 5).given
    assert bool((t[:, given] == 0).all())
    generated = t[:, ~given]
    assert bool((generated >= 1).all()) and bool((generated == generated[:, :1]).all())


def test_a_mixture_with_tasks_keeps_each_tasks_given_cells_clean():
    sampler = parse_noise_levels("monl=0.5,tasks=0.5", 5)
    tasks = ["a2v", "v2a", "av_continue", "av_inpaint"]
    assert sampler.strategies == ("vanilla", "per-modality", "per-segment", "per-cell", *[f"task:{x}" for x in tasks])
    t, component = sampler(16000, torch.Generator().manual_seed(2))
    freq = torch.bincount(component, minlength=8).float() / 16000
    assert torch.allclose(freq, torch.full((8,), 0.125), atol=0.015)
    assert bool((t[component < 4] >= 1).all())  # the four strategies never give a cell
    for k, task in enumerate(tasks, start=4):
        given = get_task(task, 5).given
        mine = t[component == k]  # (b, M, N)
        assert bool((mine[:, given] == 0).all())
        generated = mine[:, ~given]
        assert bool((generated >= 1).all()) and bool((generated == generated[:, :1]).all())


@pytest.mark.parametrize("spec, same_as", [
    ("monl", "vanilla,per-modality,per-segment,per-cell"), ("monl", "monl=3"),
    ("monl=0.5,vanilla=0.5", "vanilla=5,per-modality,per-segment,per-cell"),  # repeated names add up
    ("task:a2v", "task:a2v=2"), ("tasks", "task:a2v,task:v2a,task:av_continue,task:av_inpaint"),
])
def test_equivalent_specs_draw_the_same_levels(spec, same_as):
    a, b = parse_noise_levels(spec, 5), parse_noise_levels(same_as, 5)
    assert a.strategies == b.strategies
    assert torch.equal(draw(spec, 256, seed=3)[0], draw(same_as, 256, seed=3)[0])


def test_draws_repeat_for_a_seed():
    assert torch.equal(draw("monl", 64, seed=7)[0], draw("monl", 64, seed=7)[0])
    assert not torch.equal(draw("monl", 64, seed=7)[0], draw("monl", 64, seed=8)[0])


@pytest.mark.parametrize(
    "spec, message",
    [("per-frame", "unknown noise-level strategy 'per-frame'"), ("vanilla=x", "is not a number"),
     ("vanilla=-1", "weights must be >= 0"), ("task:nope", "unknown task 'nope'"),
     ("monl=0.5,task:nope=0.5", "unknown task 'nope'"), ("monl,task=1", "unknown noise-level strategy 'task'")],
)
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(NoiseLevelError, match=message):
        parse_noise_levels(spec, 5)


def test_a_schedule_moves_the_shares_from_the_start_mixture_to_the_final_one():
    sampler = parse_noise_level_curriculum("monl=0.7,task:a2v=0.3", "monl", 5)
    assert sampler.strategies == ("vanilla", "per-modality", "per-segment", "per-cell", "task:a2v")
    a2v = sampler.strategies.index("task:a2v")
    for progress, share in [(0.0, 0.3), (0.5, 0.15), (1.0, 0.0)]:
        expected = torch.tensor([(1 - share) / 4] * 4 + [share], dtype=torch.float64)
        assert torch.allclose(sampler.probabilities(progress), expected)
        _, component = sampler(16000, torch.Generator().manual_seed(4), progress=progress)
        assert abs((component == a2v).float().mean().item() - share) < 0.015
    # a component only the final mixture has starts at zero share
    grow = parse_noise_level_curriculum("vanilla", "per-cell", 5)
    assert grow.strategies == ("vanilla", "per-cell")
    assert torch.equal(grow.probabilities(0.0), torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert torch.equal(grow.probabilities(1.0), torch.tensor([0.0, 1.0], dtype=torch.float64))


def test_without_a_final_mixture_the_draws_are_unchanged():
    fixed = parse_noise_levels("monl=0.5,tasks=0.5", 5)
    same = parse_noise_level_curriculum("monl=0.5,tasks=0.5", None, 5)
    assert torch.equal(fixed(256, torch.Generator().manual_seed(5))[0],
                       same(256, torch.Generator().manual_seed(5), progress=0.7)[0])


def test_a_bad_final_mixture_is_refused():
    with pytest.raises(NoiseLevelError, match="unknown task 'nope'"):
        parse_noise_level_curriculum("monl", "task:nope", 5)
