"""Codec quality and speed on held-out Bouncing Tones clips.

    python benchmarks/codecs.py [--codecs DIR] [--clips 64]

Video PSNR (dB, uint8 frames), audio SNR (dB) and multi-resolution STFT distance, and whether the decoded
clips keep what Bouncing Tones is about: colour class, pitch class, audio onsets at the impacts, the
trajectory's impacts. The same analysers run on the original clips as the baseline. Encode + decode
throughput in clips/s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from avdit.codecs.interface import load_codecs
from avdit.codecs.losses import multi_resolution_stft
from avdit.data import bouncing_tones as bt
from avdit.eval.bt_analysis import audio_onsets, clip_colour_class, fit_trajectory, pitch_class


def keeps(video: np.ndarray, audio: np.ndarray, params: bt.BTParams) -> dict:
    onsets = audio_onsets(audio)
    impacts = np.array(params.impacts)
    fitted = np.array(fit_trajectory(video).impacts())
    return {
        "colour": clip_colour_class(video) == params.k,
        "pitch": pitch_class(audio) == params.k,
        "onsets": len(onsets) == len(impacts) and bool(np.abs(onsets - impacts).max() < 0.01),
        "impacts": len(fitted) == len(impacts) and bool(np.abs(fitted - impacts).max() < 0.02),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codecs", default=None, help="codec folder (default: the bundled codecs)")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    codecs = load_codecs(args.codecs)
    clips = [bt.make_clip(args.seed, i, "test") for i in range(args.clips)]
    video = torch.from_numpy(np.stack([c.video for c in clips]))
    audio = torch.from_numpy(np.stack([c.audio for c in clips]))
    start = time.perf_counter()
    with torch.no_grad():
        latents = codecs.encode(video, audio)
        out_video, out_audio = codecs.decode(latents)
    seconds = time.perf_counter() - start
    mse = ((out_video.float() - video.float()) ** 2).mean().item()
    snr = 10 * np.log10((audio**2).sum().item() / ((out_audio - audio) ** 2).sum().item())
    stft = multi_resolution_stft(out_audio, audio).item()
    truth = [keeps(c.video, c.audio, c.params) for c in clips]
    decoded = [keeps(v.numpy(), a.numpy(), c.params) for v, a, c in zip(out_video, out_audio, clips)]
    print(f"{args.clips} held-out Bouncing Tones clips; latents video {tuple(latents.video.shape[1:])}, "
          f"audio {tuple(latents.audio.shape[1:])}")
    print(f"video PSNR {10 * np.log10(255**2 / mse):.2f} dB   audio SNR {snr:.2f} dB   audio MR-STFT {stft:.3f}")
    print(f"encode+decode {args.clips / seconds:.1f} clips/s")
    print(f"{'kept (decoded / original)':<28}" + "".join(f"{k:>12}" for k in truth[0]))
    print(f"{'':<28}" + "".join(f"{np.mean([d[k] for d in decoded]):>6.0%} / {np.mean([t[k] for t in truth]):.0%}"
                                 for k in truth[0]))


if __name__ == "__main__":
    main()
