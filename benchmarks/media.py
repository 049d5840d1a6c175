"""Media throughput on this machine: Bouncing Tones clips (2.125 s, 64x64 at 8 fps, 16 kHz) encoded and decoded.

    python benchmarks/media.py [--clips 64]

Baseline, measured in the same run: PyAV decoding every packet of the same files with no resampling, cropping
or placement by timestamp; the ratio shows what avdit's reader adds on top of FFmpeg.
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


if __name__ == "__main__":
    main()
