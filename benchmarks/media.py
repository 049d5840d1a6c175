"""Media throughput on this machine: Bouncing Tones clips (2.125 s, 64x64 at 8 fps, 16 kHz) encoded and decoded,
and with ``--folder``, a step of codec training on a folder of real videos against one on Bouncing Tones.

    python benchmarks/media.py [--clips 64] [--folder DIR]

Baseline, measured in the same run: PyAV decoding every packet of the same files with no resampling, cropping
or placement by timestamp; the ratio shows what avdit's reader adds on top of FFmpeg.

``--folder DIR`` prepares DIR at the Bouncing Tones geometry (so both sides train the same network on the same
clip shape) and times `avdit train-codec video`'s step, batch 8: its data (read from the real files on the
first pass over the folder, from the decoded-clip cache after) plus the codec's training step, against the same
with Bouncing Tones clips made in memory (the baseline).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av

from avdit.data import bouncing_tones as bt
from avdit.media import read_clip, write_mp4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--folder", type=Path, default=None, help="a folder of real videos with sound")
    args = parser.parse_args()
    clips = [bt.make_clip(0, i) for i in range(args.clips)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{i}.mp4" for i in range(args.clips)]
        start = time.perf_counter()
        for clip, path in zip(clips, paths):
            write_mp4(path, clip.video, clip.audio, bt.FPS, bt.SAMPLE_RATE)
        encode = time.perf_counter() - start

        start = time.perf_counter()
        for path in paths:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0, audio=0):
                    frame.to_ndarray()
        baseline = time.perf_counter() - start

        start = time.perf_counter()
        for path in paths:
            read_clip(path, bt.FPS, bt.SAMPLE_RATE, (bt.SIZE, bt.SIZE), duration=bt.DURATION)
        decode = time.perf_counter() - start

        start = time.perf_counter()
        for path in paths:
            read_clip(path, 25, 44100, (128, 96), duration=2.0)
        resample = time.perf_counter() - start

    n = args.clips
    print(f"{n} Bouncing Tones clips (17 frames 64x64, 34000 samples)")
    print(f"encode  H.264 + AAC mp4          {n / encode:8.1f} clips/s")
    print(f"decode  PyAV raw (baseline)      {n / baseline:8.1f} clips/s")
    print(f"decode  avdit read_clip          {n / decode:8.1f} clips/s   {baseline / decode:.2f} x baseline")
    print(f"decode  + resample 25 fps/44.1k/128x96 {n / resample:6.1f} clips/s   {baseline / resample:.2f} x baseline")
    if args.folder is not None:
        folder_step(args.folder)


def folder_step(folder: Path, batch_size: int = 8, repeats: int = 3) -> None:
    """Seconds per `train-codec video` step on a real folder (first pass, cached) and on Bouncing Tones."""
    import torch

    from avdit.train.codecs import CodecTrainSettings, _forward, build_codec
    from avdit.data.datasets import BouncingTonesDataset, ClipDataset
    from avdit.data.loader import make_loader
    from avdit.data.prepare import PrepareSettings, prepare_folder

    codec = build_codec(CodecTrainSettings(kind="video"), bt.FPS, bt.SAMPLE_RATE)
    optimizer = torch.optim.AdamW(codec.net.parameters(), lr=1e-4)

    def train_step(batch) -> None:
        _, _, _, (loss, _) = _forward(codec, batch, "bf16")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def data_seconds(dataset, batches: int) -> float:
        loader = iter(make_loader(dataset, batch_size, shuffle=True, drop_last=True))
        start = time.perf_counter()
        for _ in range(batches):
            next(loader)
        return (time.perf_counter() - start) / batches

    with tempfile.TemporaryDirectory() as tmp:
        index = prepare_folder(folder, Path(tmp) / "prepared", PrepareSettings.from_geometry("bouncing-tones", hop=0.5),
                               progress=False)
        real = ClipDataset(Path(tmp) / "prepared", "train")
        passes = max(1, len(real) // batch_size)
        first = data_seconds(real, passes)  # every clip decoded from its file
        cached = data_seconds(real, passes)  # every clip from the cache
    baseline_data = data_seconds(BouncingTonesDataset(batch_size * passes), passes)
    batch = next(iter(make_loader(BouncingTonesDataset(batch_size), batch_size)))
    train_step(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        train_step(batch)
    compute = (time.perf_counter() - start) / repeats
    bt_step = compute + baseline_data
    print(f"\n{folder}: {len(index['files'])} files, {len(real)} train clips at 17 frames 64x64; train-codec video, "
          f"batch {batch_size}")
    print(f"codec training step alone                 {compute:6.3f} s")
    print(f"Bouncing Tones step (baseline)            {bt_step:6.3f} s   data {baseline_data:.3f} s")
    print(f"real folder, first pass over the files    {compute + first:6.3f} s   data {first:.3f} s   "
          f"{(compute + first) / bt_step:.2f} x baseline")
    print(f"real folder, decoded-clip cache           {compute + cached:6.3f} s   data {cached:.3f} s   "
          f"{(compute + cached) / bt_step:.2f} x baseline")


if __name__ == "__main__":
    main()
