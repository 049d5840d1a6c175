"""Diffusion as pure functions: schedule, MoNL noise levels, loss, conditioning and samplers."""

from avdit.diffusion.conditioning import conditioned_denoiser
from avdit.diffusion.denoiser import PREDICTIONS, EpsDenoiser, eps_denoiser, eps_from_v
from avdit.diffusion.generate import generate_latents
from avdit.diffusion.loss import Denoiser, LossWeighting, diffusion_loss, parse_loss_weighting, reduce_loss
from avdit.diffusion.noise_levels import (STRATEGIES, NoiseLevelError, NoiseLevelSampler, parse_noise_level_curriculum,
                                          parse_noise_levels)
from avdit.diffusion.samplers import (SAMPLERS, initial_latents, pyramid_level_matrix, sample_ddim, sample_ddpm,
                                     sample_dpmpp_2m, step_levels, task_level_matrix)
from avdit.diffusion.sampling import DEFAULT_SAMPLING, SamplingConfig
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule, predict_x0, q_sample

__all__ = [
    "DEFAULT_SAMPLING", "DEFAULT_SCHEDULE", "Denoiser", "EpsDenoiser", "NoiseLevelError", "NoiseLevelSampler",
    "NoiseSchedule", "PREDICTIONS", "SAMPLERS", "LossWeighting", "STRATEGIES", "SamplingConfig", "conditioned_denoiser",
    "diffusion_loss", "eps_denoiser", "eps_from_v", "generate_latents", "initial_latents", "parse_loss_weighting",
    "parse_noise_level_curriculum", "parse_noise_levels", "predict_x0", "q_sample", "pyramid_level_matrix",
    "reduce_loss", "sample_ddim", "sample_ddpm", "sample_dpmpp_2m", "step_levels", "task_level_matrix",
]
