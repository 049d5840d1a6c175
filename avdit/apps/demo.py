"""``avdit demo``: every task on held-out Bouncing Tones clips with the bundled model, as a static HTML page."""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np

from avdit.utils.atomic import atomic_path
from avdit.data import bouncing_tones as bt
from avdit.diffusion.sampling import SamplingConfig
from avdit.eval.measures import clip_measures, summarise
from avdit.layout import BOUNCING_TONES, same_geometry
from avdit.media import write_mp4
from avdit.pipeline import Pipeline
from avdit.apps.render import contact_sheet, save_png

DEMO_TASKS = ("joint", "a2v", "v2a", "av_continue", "av_inpaint")
MEASURES = (("identity_agreement", "colour = pitch", "{:.0%}"), ("identity_consistency", "one class", "{:.0%}"),
            ("one_disc", "one disc", "{:.0%}"), ("sync_error_ms", "sync: impact to onset (ms, median)", "{:.0f}"),
            ("onset_sync_error_ms", "sync: onset to impact (ms, median)", "{:.0f}"),
            ("onset_precision", "onset precision", "{:.2f}"), ("onset_recall", "onset recall", "{:.2f}"),
            ("onset_f1", "onset F1", "{:.2f}"))


def run_demo(out: str | Path = "avdit-demo", clips: int = 4, sampling: SamplingConfig | None = None,
             seed: int = 0, checkpoint: str | Path | None = None, device: str | None = None) -> Path:
    """Write OUT/index.html with inputs, outputs, contact sheets and measures per task; returns its path.
    ``sampling`` None: the preset the checkpoint is made for."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; give a folder for the demo page")
    start = time.perf_counter()
    pipe = Pipeline.from_pretrained(checkpoint, device=device)
    sampling = pipe.default_sampling if sampling is None else sampling
    layout = pipe.layout
    if not same_geometry(layout, BOUNCING_TONES):
        raise ValueError(f"avdit demo shows Bouncing Tones clips; {checkpoint} takes {layout.frames} frames of "
                         f"{layout.height}x{layout.width} at {layout.fps} fps. Try it with `avdit generate "
                         f"--checkpoint {checkpoint} --task a2v --input FILE`, or score it with `avdit evaluate "
                         f"--checkpoint {checkpoint} --data PREPARED_FOLDER`")
    inputs = [bt.make_clip(seed, i, "test") for i in range(clips)]
    video = np.stack([c.video for c in inputs])
    audio = np.stack([c.audio for c in inputs])
    out.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(inputs):
        write_mp4(out / f"input_{i}.mp4", clip.video, clip.audio, layout.fps, layout.sample_rate)
    reference = summarise([clip_measures(c.video, c.audio) for c in inputs])
    sections, rows = [], [("ground truth", reference)]
    for name in DEMO_TASKS:
        result = pipe(name, video, audio, num=clips, seed=seed, sampling=sampling)
        for i in range(clips):
            write_mp4(out / f"{name}_{i}.mp4", result.video[i], result.audio[i], layout.fps, layout.sample_rate)
        save_png(out / f"{name}.png", contact_sheet(result.video, result.audio, layout, result.task.given.numpy()))
        summary = summarise([clip_measures(v, a) for v, a in zip(result.video, result.audio)])
        rows.append((name, summary))
        pairs = "".join(
            f"<tr><td><video controls src='input_{i}.mp4'></video></td>"
            f"<td><video controls src='{name}_{i}.mp4'></video></td></tr>" for i in range(clips))
        sections.append(f"<h2>{html.escape(name)}</h2><pre>{html.escape(str(result.task))}</pre>"
                        f"<table><tr><th>input (held-out clip)</th><th>output</th></tr>{pairs}</table>"
                        f"<p>Contact sheet (green bar: given segment, orange: generated):</p>"
                        f"<img src='{name}.png' alt='contact sheet for {html.escape(name)}'>")
    header = "".join(f"<th>{label}</th>" for _, label, _ in MEASURES)
    table = "".join(
        f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{fmt.format(summary[key])}</td>"
                                                      for key, _, fmt in MEASURES) + "</tr>" for name, summary in rows)
    seconds = time.perf_counter() - start
    page = f"""<!doctype html><meta charset="utf-8"><title>avdit demo</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} video{{width:256px;image-rendering:pixelated}}
img{{max-width:100%;image-rendering:pixelated}} td,th{{padding:4px 10px;text-align:left}}</style>
<h1>avdit demo: one model, every audio-video task</h1>
<p>{clips} held-out Bouncing Tones clips; sampling: {html.escape(sampling.describe())} (where both modalities are
generated, the runs alternate: {html.escape(sampling.order)}), seed {seed}; made in
{seconds:.0f} s.
Measures are read from the decoded clips alone (colour class vs pitch class, disc trajectory vs audio onsets).</p>
<table><tr><th>task</th>{header}</tr>{table}</table>
{''.join(sections)}"""
    with atomic_path(out / "index.html", ".html") as tmp:
        Path(tmp).write_text(page)
    return out / "index.html"
