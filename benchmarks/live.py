"""The live page on this machine: how soon the first picture comes, how far generation stays ahead of playback,
whether playback stalls, and whether the server's memory stays flat, over a long play in Chromium. Generation keeps
at most ``avdit.apps.live.LEAD_S`` ahead of playback and then waits: its speed is counted over the time it generated.

    python benchmarks/live.py [--task joint] [--seconds 600] [--checkpoint DIR] [--docs docs/results]

Starts ``avdit serve`` (the bundled model unless told) in this process, opens the page in Debian's Chromium
(Playwright), presses Start and watches the player and the server every 5 s: playback time, seconds made, how far
generation is ahead of playback, the server's resident memory. Then presses Stop and checks the generation ended.
Writes DOCS/live.md with the command that made it.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np

from avdit.utils.atomic import atomic_path
from avdit.apps.live import resident_mb

FLAGS = ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]
WATCH = """() => { const v = document.getElementById('live-video');
    if (!v) return null;
    if (!v.dataset.watched) { v.dataset.watched = '1'; window.avditStalls = 0;
        v.addEventListener('waiting', () => { if (v.currentTime > 0) window.avditStalls += 1; }); }
    return [v.currentTime, v.webkitAudioDecodedByteCount, window.avditStalls]; }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="joint", choices=("joint", "av_continue"), help="live task (default joint)")
    parser.add_argument("--seconds", type=float, default=600.0, help="seconds of playback watched (default 600)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the bundled model)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium", help="browser")
    parser.add_argument("--docs", default="docs/results", help="folder for live.md (default docs/results)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from avdit.apps.serve import serve

    port = free_port()
    app = serve(args.checkpoint, port=port, block=False)
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS, headless=True)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}")
        page.wait_for_selector("#live-start")
        page.locator("#live-task").get_by_role("radio", name=args.task).check()
        pressed = time.perf_counter()
        page.locator("#live-start").click()
        page.wait_for_function("() => { const v = document.getElementById('live-video');"
                               " return v && v.currentTime > 0; }", timeout=120_000, polling=50)
        first_picture = time.perf_counter() - pressed
        stream = next(iter(app.live.streams.values()))
        began = time.perf_counter()
        while (elapsed := time.perf_counter() - began) < args.seconds:
            played, audio, stalls = page.evaluate(WATCH)
            rows.append({"t": elapsed, "played": played, "made": stream.stats.made_s, "audio": audio,
                         "stalls": stalls, "rss": resident_mb()})
            print(f"{elapsed:6.0f} s: played {played:7.1f} s, made {stream.stats.made_s:7.1f} s, "
                  f"ahead {stream.stats.made_s - played:5.1f} s, stalls {stalls}, RSS {rows[-1]['rss']:.0f} MB",
                  flush=True)
            page.wait_for_timeout(5000)
        speed, waited = stream.stats.speed(), stream.stats.waited_s  # how fast it makes the stream; how long it waited
        page.locator("#live-stop").click()
        stopped = time.perf_counter()
        stream.thread.join(timeout=60)
        ended_after = time.perf_counter() - stopped
        browser.close()
    app.close()

    ahead = np.array([r["made"] - r["played"] for r in rows])
    rss = np.array([r["rss"] for r in rows])
    minute = [rss[[int(r["t"] // 60) == m for r in rows]] for m in range(int(rows[-1]["t"] // 60) + 1)]
    command = "python benchmarks/live.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = ["# The live page on this machine", "", "Made by", "", f"    {command.strip()}", "",
             f"`avdit serve` with {'the bundled model' if args.checkpoint is None else args.checkpoint}, live task "
             f"**{args.task}**, played in Chromium for {rows[-1]['t']:.0f} s.", "",
             "| measure | value |", "|---|---:|",
             f"| first picture after pressing Start (s) | {first_picture:.1f} |",
             f"| generation speed (s of content per s of generating) | {speed:.2f}x |",
             f"| generation waited for playback, {stream.lead_s:.0f} s ahead (s) | {waited:.0f} |",
             f"| ahead of playback: min / median / last (s) | {ahead.min():.1f} / {np.median(ahead):.1f} / "
             f"{ahead[-1]:.1f} |",
             f"| stalls after the start | {rows[-1]['stalls']} |",
             f"| audio decoded (bytes) | {rows[-1]['audio']} |",
             f"| server memory, first / last minute (median MB) | {np.median(minute[0]):.0f} / "
             f"{np.median(minute[-1]):.0f} |",
             f"| generation ended after Stop (s) | {ended_after:.1f} "
             f"({'ended' if not stream.running else 'STILL RUNNING'}) |",
             "", "Server memory per minute (median MB): " + ", ".join(f"{np.median(m):.0f}" for m in minute if len(m)),
             ""]
    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    with atomic_path(docs / "live.md", ".md") as tmp:
        Path(tmp).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
