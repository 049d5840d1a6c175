"""What today's metrics cost per clip on this machine, against generating the clip in the same run.

    python benchmarks/metric_cost.py [--clips 2] [--metrics FD-PANNs AV-IB DeSync]

The bundled model makes ``--clips`` joint clips with generate's defaults (the baseline: seconds per clip). Each
metric's network is then built at its released size with random weights (no weights are downloaded; the cost does
not depend on their values) and scores those clips: seconds per clip and the ratio to generating one. An evaluation
scores each task's clips and the reference clips, so ``avdit evaluate --num 200`` over 5 tasks runs each network on
about 1400 clips.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import matmul_peaks  # noqa: E402

from avdit.pipeline import Pipeline  # noqa: E402


def full_size(make, on_meta: bool) -> torch.nn.Module:
    """The network at its released size with small random weights (``on_meta``: built on the meta device first,
    so that ImageBind's 0.7 B parameters are not initialised twice)."""
    if on_meta:
        with torch.device("meta"):
            net = make()
        net = net.to_empty(device="cpu")
    else:
        net = make()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
            if name.endswith("running_var"):
                tensor.fill_(1.0)
            elif tensor.is_floating_point() and "_extractor." not in name:  # PANNs' STFT and mel kernels kept
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.02)
    return net.eval()


def scorers() -> dict:
    """metric -> (build the network, score (net, video, audio, fps, rate) -> per-clip values, build on meta)."""
    from avdit.eval.features.imagebind import ImageBindVisionAudio, av_ib_scores
    from avdit.eval.features.panns import Cnn14
    from avdit.eval.features.synchformer import Synchformer, desync_scores

    def panns(net, video, audio, fps, rate):
        return net(torch.from_numpy(audio).float())

    return {"FD-PANNs": (Cnn14, panns, False), "AV-IB": (ImageBindVisionAudio, av_ib_scores, True),
            "DeSync": (Synchformer, desync_scores, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2, help="joint clips made and scored (default 2)")
    parser.add_argument("--metrics", nargs="+", default=["FD-PANNs", "AV-IB", "DeSync"])
    args = parser.parse_args()
    matmul_peaks("random weights at the released sizes")
    pipe = Pipeline.from_pretrained()
    pipe.progress = False
    pipe("joint", num=1, seed=0)  # warm-up
    start = time.perf_counter()
    result = pipe("joint", num=args.clips, seed=0)
    generate = (time.perf_counter() - start) / args.clips
    layout = pipe.layout
    print(f"baseline: generating a {layout.frames / layout.fps:g}-s joint clip ({layout.frames} frames of "
          f"{layout.height}x{layout.width}, {layout.sample_rate} Hz) takes {generate:.2f} s\n")
    print(f"{'metric':<10}{'params':>14}{'s/clip':>9}{'x generate':>12}{'1400 clips':>12}")
    available = scorers()
    for metric in args.metrics:
        make, score, on_meta = available[metric]
        net = full_size(make, on_meta)
        with torch.no_grad():
            score(net, result.video[:1], result.audio[:1], layout.fps, layout.sample_rate)  # warm-up
            start = time.perf_counter()
            score(net, result.video, result.audio, layout.fps, layout.sample_rate)
        per_clip = (time.perf_counter() - start) / args.clips
        params = sum(p.numel() for p in net.parameters())
        print(f"{metric:<10}{params:>14,}{per_clip:>9.2f}{per_clip / generate:>12.1f}{per_clip * 1400 / 3600:>10.1f} h",
              flush=True)
        del net
    print("\n'1400 clips': one `avdit evaluate --num 200` over the 5 tasks (each task's clips and the references).")


if __name__ == "__main__":
    main()
