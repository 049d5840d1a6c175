"""Streams of minutes on Bouncing Tones: how long does a rolled stream keep its subject, its ball and its sync?

    python benchmarks/streams.py [--tasks av_continue,joint,a2v,v2a] [--starts 20] [--duration 600] [--batch-size 20]
                                 [--before-duration 120] [--first 0]
                                 [--variants after,anchor-guided,audio-guided,fresh-noise,spread,before]
                                 [--checkpoint DIR] [--codecs DIR] [--out runs/streams] [--docs docs/results]

For each task, ``--starts`` streams of ``--duration`` seconds with generation's defaults (``after``): av_continue from
the first window of a held-out clip, joint from nothing (a seed per stream), a2v and v2a along a held-out clip as long
as the stream (the same bounce going on), whose given modality slides along. For av_continue and joint,
``anchor-guided`` is the same with anchor guidance 3 (``anchor_guidance``, off by default), ``spread`` without the
anchor segment (``anchor_segment=False``: the first window's segment 0 is not given to every window) and with fresh
noise in every window, and ``before`` without holding the first window's latent spread either (how earlier versions
rolled); for every task, ``audio-guided`` is the defaults with free guidance 2 on the generated audio
(``guidance=(1, 2)``; a study of wrong notes), ``fresh-noise`` the defaults with every window's video drawn from
fresh noise (``held_noise=False``, an earlier version), ``one-audio-draw`` the defaults with no second audio draw
where a window sounds unlike the first (``audio_candidates=1``, the version before), and ``two-audio-draws`` with
two audio draws in every rolled window (``audio_redraw="always"``). Each of these runs
over ``--before-duration`` s; ``--variants`` picks which (default: after, spread, before). Every 2-s window is
measured (``avdit.eval.long_clips.stream_windows``): colour and pitch class, the disc's size and brightness; sync on
every 8th window. A stream is held until the first
window whose class is not the first window's (subject lost), or whose size or brightness is 10 % off the first
window's or which has a frame without exactly one disc (ball lost). Reports the time held (its distribution), the
share held to the end, size, brightness and sync per minute,
how fast streams are made (per stream in a batch, and one joint stream alone, what `avdit generate` gives, with the
defaults and with one audio draw per window), and how the subject was lost
(``avdit.eval.long_clips.subject_losses``: the pitch or the colour first, for one window or for good).
Writes DOCS/streams.md and DOCS/streams.svg; OUT/results.json keeps finished rows, so a rerun resumes, and each stream's
classes and size window by window.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from avdit.utils.atomic import atomic_path, write_json
from avdit.data import bouncing_tones as bt
from avdit.diffusion import DEFAULT_SAMPLING
from avdit.diffusion.conditioning import DEFAULT_GUIDANCE
from avdit.eval.long_clips import WINDOW_HOP, stream_windows, subject_losses, time_held
from avdit.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).parent))
from common import resumable_record  # noqa: E402

TOLERANCE = 0.1  # size and brightness within 10 % of the first window's
# generation's defaults; with anchor guidance (a study, off by default); without the anchor segment and the held
# noise (earlier streams); without the distribution held either (earlier still); with more guidance on the audio (a
# study of wrong notes); with fresh video noise in every window (the version before held_noise); with one audio draw
# a window (the version before audio_candidates=2); with two in every window (audio_redraw="always"); with a joint
# stream's first window drawn once (the version before keyframe_first)
VARIANTS = {"after": {}, "anchor-guided": {"anchor_guidance": 3.0},
            "spread": {"anchor_segment": False, "held_noise": False, "keyframe_first": False},
            "before": {"anchor_spread": False, "anchor_segment": False, "held_noise": False, "keyframe_first": False},
            "audio-guided": {"guidance": (DEFAULT_GUIDANCE, 2.0)}, "fresh-noise": {"held_noise": False},
            "one-audio-draw": {"audio_candidates": 1}, "two-audio-draws": {"audio_redraw": "always"},
            "first-drawn-once": {"keyframe_first": False}}
SINGLE_ROUNDS = 3  # one joint stream alone, timed in turns with the defaults and with one audio draw
SLIDING = ("a2v", "v2a")  # tasks whose given modality slides along a long input: no anchor segment to compare
ANCHOR_VARIANTS = ("spread", "before")  # variants about the anchors, made for av_continue and joint only


def run_streams(pipe: Pipeline, task: str, starts: int, duration: float, batch: int, seed: int, options: dict,
                sync_every: int, first_clip: int = 0) -> tuple[list[list[dict]], float, dict]:
    """Window measures of each stream (from held-out clips ``first_clip`` on), the seconds it took to make them
    all, and how many rolled windows were made and how many of them drew their audio again (``audio_candidates``)."""
    streams, took, draws = [], 0.0, {"rolled": 0, "audio_again": 0}
    sample = pipe._sample

    def counted(task, clean, *rest):  # (task, clean latents, ...): Pipeline._sample, counting the draws it makes
        kind = task.name.rsplit("+", 1)[-1]
        if kind in ("rolling", "audio"):
            draws["rolled" if kind == "rolling" else "audio_again"] += clean.batch_size
        return sample(task, clean, *rest)
    for first in range(0, starts, batch):
        num = min(batch, starts - first)
        # a2v and v2a slide along an input as long as the stream: the same bounce going on (make_clip's frames)
        frames = round(duration * bt.FPS) + 1 if task in SLIDING else bt.FRAMES
        clips = [bt.make_clip(seed, first_clip + first + i, "test", frames=frames) for i in range(num)]
        video, audio = np.stack([c.video for c in clips]), np.stack([c.audio for c in clips])
        given = {"av_continue": (video, audio), "joint": (None, None), "a2v": (None, audio),
                 "v2a": (video, None)}[task]
        began = time.perf_counter()
        pipe._sample = counted
        try:
            chunks = list(pipe.stream(task=task, video=given[0], audio=given[1], num=num, seed=seed + first,
                                      duration=duration, sampling=pipe.default_sampling.replace(**options)))
        finally:
            pipe._sample = sample
        took += time.perf_counter() - began
        video, audio = (np.concatenate([getattr(c, k) for c in chunks], 1) for k in ("video", "audio"))
        streams += [stream_windows(v, a, sync_every) for v, a in zip(video, audio)]
        print(f"  {task}: {len(streams)}/{starts} streams", flush=True)
    return streams, took, draws


def single_stream_speed(pipe: Pipeline, seconds: float, options: dict | None = None) -> float:
    """Seconds of content per second for one joint stream alone (generation's defaults changed by ``options``)."""
    sampling = pipe.default_sampling.replace(**(options or {}))
    began = time.perf_counter()
    for _ in pipe.stream(task="joint", duration=seconds, sampling=sampling):
        pass
    return seconds / (time.perf_counter() - began)


def summarise(streams: list[list[dict]], duration: float, seconds: float) -> dict:
    held = [time_held(w, TOLERANCE) for w in streams]
    lost = [h["lost_s"] if h["lost_s"] is not None else duration for h in held]
    minutes = math.ceil(duration / 60)
    per_minute = []
    for m in range(minutes):
        rows = [(w, s[0]) for s in streams for w in s if m * 60 <= w["start_s"] < (m + 1) * 60]
        ratio = lambda key: float(np.median([w[key] / max(f[key], 1e-9) for w, f in rows]))  # noqa: E731
        sync = [w[k] for w, _ in rows for k in ("sync_error_ms", "onset_sync_error_ms") if not math.isnan(w[k])]
        per_minute.append({"minute": m + 1, "size": ratio("size_px2"), "brightness": ratio("brightness"),
                           "sync_ms": float(np.median(sync)) if sync else math.nan})
    firsts = [s[0][k] for s in streams for k in ("sync_error_ms", "onset_sync_error_ms")
              if not math.isnan(s[0][k])]
    return {"streams": len(streams), "duration": duration, "held_to_end": float(np.mean([h["lost_s"] is None
                                                                                        for h in held])),
            "subject_held_to_end": float(np.mean([h["subject_lost_s"] is None for h in held])),
            "time_held_s": lost, "per_minute": per_minute,
            # per stream, when it lost its subject and its ball (None: kept to the end)
            "subject_lost_s": [h["subject_lost_s"] for h in held], "ball_lost_s": [h["ball_lost_s"] for h in held],
            "discs_off_s": [h["discs_off_s"] for h in held],  # a frame without exactly one disc
            "first_window_sync_ms": float(np.median(firsts)) if firsts else math.nan,
            "speed_per_stream": len(streams) * duration / seconds, "seconds": seconds,
            "subject_losses": subject_losses(streams), "windows": [window_series(s) for s in streams]}


def window_series(windows: list[dict]) -> dict:
    """One stream's 2-s windows, compactly, for a later look at how it was lost: colour and pitch class per window
    as a string of digits ('-': no disc seen), the disc's size and brightness as ratios to the first window's, and
    the share of each window's frames with one disc."""
    digits = lambda key: "".join(str(w[key]) if w[key] >= 0 else "-" for w in windows)  # noqa: E731
    ratios = lambda key: [round(w[key] / max(windows[0][key], 1e-9), 3) for w in windows]  # noqa: E731
    return {"colour": digits("colour"), "pitch": digits("pitch"), "size": ratios("size_px2"),
            "brightness": ratios("brightness"),
            "one_disc": [round(w["one_disc"], 3) for w in windows]}


# size_settling: the rolled windows whose mean is set against the rest, the seconds after which the rest begins, and
# the lags (in windows) of a stream's autocorrelation
SETTLING_EARLY, SETTLING_AFTER_S, SETTLING_LAGS = 3, 30.0, (1, 2, 5)


def size_settling(series: list[dict]) -> dict | None:
    """How the streams' disc sizes (``window_series``: ratios to each first window's) behave about their own: the
    streams' mean size over the rolled windows as rms from 1, the flicker (a stream's standard deviation, median over
    streams), the correlation over streams of the mean of the first ``SETTLING_EARLY`` rolled windows with the mean
    from ``SETTLING_AFTER_S`` s on (near 1 where each stream's size is set at its start, near 0 for flicker alone),
    and a stream's autocorrelation about its own mean at ``SETTLING_LAGS`` windows (median). None where the streams
    are too short."""
    later = math.ceil(SETTLING_AFTER_S * bt.FPS / WINDOW_HOP) - 1  # the first rolled window from then on
    sizes = [np.asarray(s["size"][1:]) for s in series]  # the rolled windows
    if len(sizes) < 3 or min(len(z) for z in sizes) < later + max(SETTLING_LAGS):
        return None
    autocorrelation = [[np.corrcoef(z[:-k], z[k:])[0, 1] for k in SETTLING_LAGS] for z in sizes if z.std() > 0]
    return {"mean_rms_from_1": float(np.sqrt(np.mean([(z.mean() - 1) ** 2 for z in sizes]))),
            "flicker": float(np.median([z.std() for z in sizes])),
            "early_later_correlation": float(np.corrcoef([z[:SETTLING_EARLY].mean() for z in sizes],
                                                         [z[later:].mean() for z in sizes])[0, 1]),
            "autocorrelation": dict(zip(SETTLING_LAGS, np.nanmedian(autocorrelation, axis=0).tolist()))}


def survival_svg(rows: dict) -> str:
    """Share of streams still held against time, one line per row."""
    w, h, pad = 640, 300, 50
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]
    horizon = max(r["duration"] for r in rows.values())
    x = lambda t: pad + (w - 2 * pad) * t / horizon  # noqa: E731
    y = lambda share: h - pad + (2 * pad - h) * share  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             'font-size="12">', f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>',
             f'<text x="{w / 2 - 60}" y="{h - 15}">seconds of stream</text>',
             f'<text x="5" y="{pad - 10}">share of streams held</text>']
    for t in np.linspace(0, horizon, 6):
        parts.append(f'<text x="{x(t) - 10:.0f}" y="{h - pad + 15}">{t:.0f}</text>')
    for share in (0, 0.5, 1):
        parts.append(f'<text x="{pad - 30}" y="{y(share) + 4:.0f}">{share:g}</text>')
    for i, (name, row) in enumerate(rows.items()):
        times = np.sort(row["time_held_s"])
        points = [(0.0, 1.0)]
        for k, t in enumerate(times):
            points += [(t, 1 - k / len(times)), (t, 1 - (k + 1) / len(times))]
        points.append((row["duration"], points[-1][1]))
        path = " ".join(f"{x(t):.1f},{y(s):.1f}" for t, s in points)
        colour = colours[i % len(colours)]
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{w - pad - 150}" y="{pad + 15 * i}" fill="{colour}">{name}</text>')
    return "\n".join(parts + ["</svg>"]) + "\n"


def page(rows: dict, single: dict | None, commands: list[str]) -> str:
    lines = ["# Streams of minutes on Bouncing Tones", "", "Made by", "", *(f"    {c}" for c in commands), "",
             "Each stream rolls 2.125-s windows, each given 0.625 s and making the next 1.5 s. A stream is held "
             "until the first 2-s window whose colour or pitch class is not the first window's (subject lost), or "
             "whose disc size (its area, `disc_area`, the mean over the window's frames) or brightness is more than "
             f"{TOLERANCE:.0%} off the first window's, or which has a frame without exactly one disc (`disc_count`: "
             "none, or a second beside the first), ball lost. `after`: generation's defaults "
             "(every window is given the first window's segment 0, `anchor_segment`, its generated video latents "
             "keep the first window's distribution, `anchor_spread`, and it draws its video from one noise per "
             "stream, `held_noise`; a joint stream's first window is drawn again from its own segment 0, "
             "`keyframe_first`); `first-drawn-once`: the same with a joint stream's first window drawn once (the "
             "version before); `anchor-guided`: the same with anchor guidance 3 (`anchor_guidance`); "
             "`audio-guided`: the same with free guidance 2 on the generated audio; `fresh-noise`: the same with every "
             "window's video drawn from fresh noise (a version before); `one-audio-draw`: the same without a second "
             "audio draw where a window sounds unlike the first window (`audio_candidates=1`, the version before); "
             "`two-audio-draws`: the same with two audio draws in every rolled window (`audio_redraw=\"always\"`); "
             "`spread`: without the anchor segment, "
             "fresh noise (a version before that); `before`: without the distribution held either, as earlier "
             "versions rolled. a2v and v2a slide along a held-out "
             "clip as long as the stream (the same bounce going on): their given modality is the input's own, and "
             "the anchor segment is the generated modality's.", "",
             "| task | variant | streams | seconds each | held to the end ↑ | subject held to the end ↑ | "
             "ball held to the end ↑ | one disc to the end ↑ | time held: min / median / max s | "
             "first-window sync ms | "
             "last-minute sync ms | last-minute size / brightness vs first window | "
             "made per stream (batched) x real time |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|"]
    for name, r in rows.items():
        task, variant = name.split("@")
        held = np.asarray(r["time_held_s"])
        last = r["per_minute"][-1]
        ball, discs = (f"{np.mean([t is None for t in r[k]]):.0%}" if k in r else "—"
                       for k in ("ball_lost_s", "discs_off_s"))
        lines.append(f"| {task} | {variant} | {r['streams']} | {r['duration']:.0f} | {r['held_to_end']:.0%} | "
                     f"{r['subject_held_to_end']:.0%} | {ball} | {discs} | "
                     f"{held.min():.0f} / {np.median(held):.0f} / {held.max():.0f} | "
                     f"{r['first_window_sync_ms']:.0f} | {last['sync_ms']:.0f} | "
                     f"{last['size']:.2f} / {last['brightness']:.2f} | {r['speed_per_stream']:.1f} |")
    if single is not None:
        lines += ["", "One joint stream alone (as `avdit generate --duration` makes it): "
                      f"**{single['speed']:.2f}x real time** on this machine, {single['seconds']:g} s of content, "
                      "model loaded" + (f", the median of {len(single['rounds'])} timed in turns"
                                        if "rounds" in single else "")
                      + (f"; with one audio draw per window (`audio_candidates=1`, the version before), "
                         f"{single['speed_one_audio_draw']:.2f}x in the same run: the defaults make "
                         f"{single['speed'] / single['speed_one_audio_draw']:.2f} of its speed."
                         if "speed_one_audio_draw" in single else ".")]
    drawn = {name: r["draws"] for name, r in rows.items() if r.get("draws", {}).get("rolled")
             and DEFAULT_SAMPLING.replace(**VARIANTS[name.split("@")[1]]).audio_candidates > 1}
    if drawn:
        lines += ["", "Rolled windows whose audio was drawn again where it sounded unlike the first window's "
                      "(`audio_candidates`): " + "; ".join(
                          f"{name.replace('@', ' ')} {d['audio_again']:,} of {d['rolled']:,} "
                          f"({d['audio_again'] / d['rolled']:.1%})" for name, d in drawn.items()) + "."]
    lines += ["", "Per minute (median over streams and windows; size and brightness as a ratio to each stream's "
                  "first window, sync both ways in ms):", "",
              "| task | variant | minute | size | brightness | sync ms |", "|---|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        task, variant = name.split("@")
        for m in r["per_minute"]:
            lines.append(f"| {task} | {variant} | {m['minute']} | {m['size']:.2f} | {m['brightness']:.2f} | "
                         f"{m['sync_ms']:.0f} |")
    losses = {name: r["subject_losses"] for name, r in rows.items() if "subject_losses" in r}
    if losses:
        lines += ["", "How the subject was lost (what was off in the first window off; a stream that never came back "
                      "is off in its last window too; a brief loss is off for one window at a time):", "",
                  "| task | variant | streams lost | pitch first / colour first / both | never came back | brief | "
                  "windows off |", "|---|---|---:|---|---:|---:|---:|"]
        for name, n in losses.items():
            task, variant = name.split("@")
            f = n["first_off"]
            lines.append(f"| {task} | {variant} | {n['lost']} | {f['pitch']} / {f['colour']} / {f['both']} | "
                         f"{n['lasting']} | {n['brief']} | {n['off_windows']} of {n['windows']} |")
    settling = {name: size_settling(r["windows"]) for name, r in rows.items() if "windows" in r}
    settling = {name: f for name, f in settling.items() if f is not None}
    if settling:
        lags = " / ".join(map(str, SETTLING_LAGS))
        lines += ["", "How a stream's disc size behaves about its own (sizes as ratios to the first window's, over the "
                      "rolled windows): the streams' mean size as rms from 1; the flicker, a stream's standard "
                      "deviation (median); how far the size is set at the start, the correlation over streams of the "
                      f"first {SETTLING_EARLY} rolled windows' mean with the mean after {SETTLING_AFTER_S:g} s; and a "
                      f"stream's autocorrelation about its own mean, {lags} windows apart (median):", "",
                  f"| task | variant | mean size, rms from 1 | flicker | first {SETTLING_EARLY} windows vs after "
                  f"{SETTLING_AFTER_S:g} s | autocorrelation at {lags} windows |", "|---|---|---:|---:|---:|---|"]
        for name, f in settling.items():
            task, variant = name.split("@")
            values = " / ".join(f"{v:.2f}" for v in f["autocorrelation"].values())
            lines.append(f"| {task} | {variant} | {f['mean_rms_from_1']:.3f} | {f['flicker']:.3f} | "
                         f"{f['early_later_correlation']:.2f} | {values} |")
    lines += ["", "![share of streams held against time](streams.svg)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="av_continue,joint",
                        help="tasks: av_continue, joint, a2v, v2a (default av_continue,joint)")
    parser.add_argument("--starts", type=int, default=20, help="streams per task (default 20)")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds per stream (default 600)")
    parser.add_argument("--before-duration", type=float, default=120.0,
                        help="seconds per stream of the variants other than 'after' (default 120; 0: skip)")
    parser.add_argument("--variants", default="after,spread,before",
                        help=f"which of {','.join(VARIANTS)} to make (default after,spread,before)")
    parser.add_argument("--batch-size", type=int, default=20, help="streams made together (default 20)")
    parser.add_argument("--sync-every", type=int, default=8, help="measure sync on every n-th window (default 8)")
    parser.add_argument("--single", type=float, default=60.0, help="seconds of one stream timed alone (0: skip)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the bundled model)")
    parser.add_argument("--codecs", default=None, help="codec folder (default: the ones the checkpoint names)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clips and of sampling (default 0)")
    parser.add_argument("--first", type=int, default=0, help="the first held-out clip the streams start from "
                                                              "(default 0: clips 0 to STARTS-1)")
    parser.add_argument("--out", default="runs/streams", help="folder for results.json (default runs/streams)")
    parser.add_argument("--docs", default="docs/results", help="folder for streams.md/svg (default docs/results)")
    args = parser.parse_args(argv)
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"--variants: unknown {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    out, docs = Path(args.out), Path(args.docs)
    out.mkdir(parents=True, exist_ok=True)
    pipe = Pipeline.from_pretrained(args.checkpoint, codecs=args.codecs)
    settings = {"starts": args.starts, "seed": args.seed, "sync_every": args.sync_every,
                "weights": pipe.weights_digest(), "size": "disc_area", "ball": "one disc",
                **({"first": args.first} if args.first else {})}  # rows of other weights, starts, clips or
    # measures are not reused (the size was the coverage summed over the frame before disc_area; the ball was held
    # without a disc count before "one disc")
    record_path = out / "results.json"
    record = resumable_record(record_path, settings, "streams")
    command = ("python benchmarks/streams.py " + shlex.join(argv if argv is not None else sys.argv[1:])).strip()
    for task in args.tasks.split(","):
        for variant in args.variants.split(","):
            options = VARIANTS[variant]
            duration = args.duration if variant == "after" else args.before_duration
            if task in SLIDING and variant in ANCHOR_VARIANTS:
                continue
            name = f"{task}@{variant}"
            done = record["rows"].get(name, {}).get("duration", 0)
            if not duration or done == duration or (variant != "after" and done > duration):  # a longer one is kept
                continue
            print(f"{name}: {args.starts} streams of {duration:g} s", flush=True)
            streams, seconds, draws = run_streams(pipe, task, args.starts, duration, args.batch_size, args.seed,
                                                  options, args.sync_every, args.first)
            record["rows"][name] = {**summarise(streams, duration, seconds), "draws": draws, "command": command}
            write_json(record_path, record)
            row = record["rows"][name]
            print(f"{name}: held to the end {row['held_to_end']:.0%}, time held median "
                  f"{np.median(row['time_held_s']):.0f} s, {row['speed_per_stream']:.1f}x real time per stream",
                  flush=True)
    single = record.get("single", {})
    if args.single and (single.get("seconds") != args.single or "rounds" not in single):
        # the defaults, and beside them in the same run one audio draw per window (audio_candidates=1), in turns:
        # this machine's speed wanders by 15-30 % from minute to minute; the median of SINGLE_ROUNDS each
        rounds = [(single_stream_speed(pipe, args.single), single_stream_speed(pipe, args.single,
                                                                               VARIANTS["one-audio-draw"]))
                  for _ in range(SINGLE_ROUNDS)]
        record["single"] = {"seconds": args.single, "rounds": rounds,
                            "speed": float(np.median([r[0] for r in rounds])),
                            "speed_one_audio_draw": float(np.median([r[1] for r in rounds]))}
        write_json(record_path, record)
    docs.mkdir(parents=True, exist_ok=True)
    commands = list(dict.fromkeys(row.get("command", command) for row in record["rows"].values()))
    for name, text in (("streams.md", page(record["rows"], record.get("single"), commands)),
                       ("streams.svg", survival_svg(record["rows"]))):
        with atomic_path(docs / name, Path(name).suffix) as tmp:
            Path(tmp).write_text(text)
    print(f"written to {docs / 'streams.md'} and {docs / 'streams.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
