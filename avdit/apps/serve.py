"""``avdit serve``: every task in the browser (Gradio), with the bundled model or a checkpoint.

The page: an input (a held-out Bouncing Tones clip, or an uploaded video and/or audio file), the task grid as
clickable cells (given segments of video and of audio) with the presets as one-click choices, the sampler
settings, and the result: the generated clip (video with its audio) beside the input, its contact sheet, and
the mp4 to download. Bouncing Tones clips are offered only when the model's clips have their geometry.

Bad input is reported in the page, naming files by their base name only. The page reads only files in
Gradio's upload folder (a path named in a request that resolves elsewhere is refused), keeps the files of the
last ``MAX_KEPT_REQUESTS`` requests, and refuses uploads over a size limit. The server binds to 127.0.0.1
unless told otherwise; it has no login unless given one (``auth``), and warns when it listens on other hosts.
"""

from __future__ import annotations

import collections
import copy
import os
import re
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import fields
from pathlib import Path

import numpy as np

from avdit.diffusion.generate import sampler_passes
from avdit.diffusion.sampling import ORDERS, SAMPLER_NAMES, SAMPLERS, SamplingConfig
from avdit.layout import AUDIO, BOUNCING_TONES, MODALITIES, VIDEO, same_geometry
from avdit.apps.live import LiveStreams, StreamBusy, status_line
from avdit.media.errors import MediaError
from avdit.tasks import TASK_PRESETS, TaskError, get_task
from avdit.pipeline import sampling_preset_of

SAMPLING_CONTROLS = ("sampler", "steps", "guidance_video", "guidance_audio", "order")  # the page's, after the preset
SHOWN_PRESETS = ("joint", "a2v", "v2a", "av_continue", "av_inpaint")
BT_CLIPS = 16  # held-out Bouncing Tones clips offered in the page
BT_SOURCE, UPLOAD_SOURCE = "Bouncing Tones clip", "upload"
MAX_KEPT_REQUESTS = 32  # request folders kept on disk; older ones are deleted
CACHE_SWEEP_S, CACHE_MAX_AGE_S = 3600, 86400  # Gradio's copies of uploads and results: hourly, older than a day
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
LIVE_TASKS = ("joint", "av_continue")  # what the live section streams
LIVE_ROUTE = "/avdit-live"  # where the server sends live streams
LIVE_PLAYER_JS = (Path(__file__).parent / "live_player.js").read_text()  # plays them as they arrive (MSE)
_PATH = re.compile(r"(?<![\w.~])(?:/[^\s/'\"`]+)+/([^\s/'\"`]+)")  # an absolute path of two or more parts


class NotAnUpload(ValueError):
    """A request named a file that was not uploaded to the page."""


def offers_bouncing_tones(layout) -> bool:
    """Whether held-out Bouncing Tones clips fit ``layout`` (same fps, frames, frame size and sample rate)."""
    return same_geometry(layout, BOUNCING_TONES)


def page_message(err: Exception) -> str:
    """``err`` as the page says it: files by their base name, no server paths."""
    if isinstance(err, MediaError):
        text = f"{Path(err.path).name}: {err.problem}"
    elif isinstance(err, OSError):
        text = err.strerror or type(err).__name__
        if isinstance(err.filename, (str, os.PathLike)):
            text = f"{Path(err.filename).name}: {text}"
    elif isinstance(err, ValueError):
        text = str(err)
    else:
        text = f"internal error ({type(err).__name__}); the server's log has the details"
    return _PATH.sub(r"\1", text)


def parse_auth(auth: str | tuple[str, str] | None) -> tuple[str, str] | None:
    """'USER:PASSWORD' (or a pair) as the pair Gradio's ``launch(auth=...)`` takes."""
    if auth is None:
        return None
    user, sep, password = auth.partition(":") if isinstance(auth, str) else (auth[0], ":", auth[1])
    if not (sep and user and password):
        raise ValueError("auth must be USER:PASSWORD, both non-empty")
    return user, password


def segment_labels(layout) -> list[str]:
    """'0 (0.00-0.12 s)', ... one per segment of the grid."""
    bounds = layout.segment_bounds
    return [f"{n} ({float(bounds[n]):.2f}-{float(bounds[n + 1]):.2f} s)" for n in range(layout.num_segments)]


def preset_cells(name: str, layout) -> tuple[list[str], list[str]]:
    """The given segment labels of video and of audio for a preset."""
    given = get_task(name, layout.num_segments).given
    labels = segment_labels(layout)
    return ([labels[n] for n in range(layout.num_segments) if given[VIDEO, n]],
            [labels[n] for n in range(layout.num_segments) if given[AUDIO, n]])


def task_from_cells(video_cells: list[str], audio_cells: list[str], layout):
    """The task whose given cells are the ticked ones (nothing ticked: joint generation)."""
    parts = [f"{MODALITIES[m]}:" + "+".join(cell.split()[0] for cell in cells)
             for m, cells in ((VIDEO, video_cells), (AUDIO, audio_cells)) if cells]
    return get_task(",".join(parts) if parts else "joint", layout.num_segments)


class PageRequests:
    """What the page calls: one request in, files out (mp4s and the contact sheet in a fresh folder).

    Uploaded files are read only from ``upload_dir`` (symlinks resolved); the folders of the last
    ``MAX_KEPT_REQUESTS`` requests are kept, older ones deleted.
    """

    def __init__(self, pipe, out_dir: str | Path | None = None, *, upload_dir: str | Path):
        """Without ``out_dir`` the files go to a temporary folder removed when the server's process ends."""
        self.pipe, self.layout = copy.copy(pipe), pipe.layout  # the same model, its own progress bars (the page's)
        self.pipe.progress = True
        self.upload_dir = Path(upload_dir).resolve()
        self.bouncing_tones = offers_bouncing_tones(self.layout)
        self._temporary = None if out_dir else tempfile.TemporaryDirectory(prefix="avdit-serve-")
        self.out_dir = Path(out_dir or self._temporary.name)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.keep = MAX_KEPT_REQUESTS
        self._folders: collections.deque[Path] = collections.deque()
        self._lock = threading.Lock()

    def uploaded(self, path: str | os.PathLike) -> str:
        """``path`` resolved, if it lies in the upload folder; else ``NotAnUpload``."""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.upload_dir):
            raise NotAnUpload(f"{Path(path).name}: was not uploaded to this page")
        return str(resolved)

    def new_folder(self) -> Path:
        """A fresh request folder; the oldest are deleted beyond ``self.keep``."""
        with self._lock:
            folder = Path(tempfile.mkdtemp(prefix="request-", dir=self.out_dir))
            self._folders.append(folder)
            while len(self._folders) > self.keep:
                shutil.rmtree(self._folders.popleft(), ignore_errors=True)
        return folder

    def inputs(self, task, source: str, bt_index: int, video_file: str | None,
               audio_file: str | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The given video (T, H, W, 3) uint8 and audio (S,) float32 of one window, read only for the modalities the
        task gives (None for the others): a held-out Bouncing Tones clip, or uploaded files."""
        from avdit.data import bouncing_tones as bt
        from avdit.media import read_clip

        layout = self.layout
        if source == UPLOAD_SOURCE:
            if not video_file and not audio_file:
                raise ValueError("upload a video or an audio file" +
                                 (", or choose a Bouncing Tones clip" if self.bouncing_tones else ""))
            video_file = video_file and self.uploaded(video_file)
            audio_file = audio_file and self.uploaded(audio_file)
            video = audio = None
            size = (layout.height, layout.width)
            if bool(task.given[VIDEO].any()):  # read only what the task gives
                if not video_file:
                    raise TaskError("the grid gives video segments, but no video was uploaded")
                video = read_clip(video_file, layout.fps, layout.sample_rate, size, duration=layout.duration,
                                  audio=False).video
            if bool(task.given[AUDIO].any()):
                audio = read_clip(audio_file or video_file, layout.fps, layout.sample_rate, size,
                                  duration=layout.duration, video=False).audio
        elif not self.bouncing_tones:
            raise ValueError(f"this model's clips ({layout.height}x{layout.width}, {layout.frames} frames at "
                             f"{layout.fps} fps) are not Bouncing Tones clips: upload a video or an audio file")
        elif not 0 <= int(bt_index) < BT_CLIPS:
            raise ValueError(f"choose a Bouncing Tones clip from 0 to {BT_CLIPS - 1}")
        else:
            clip = bt.make_clip(0, int(bt_index), "test")
            video, audio = clip.video, clip.audio
        return video, audio

    def __call__(self, source: str, bt_index: int, video_file: str | None, audio_file: str | None,
                 video_cells: list[str], audio_cells: list[str], sampling: SamplingConfig,
                 seed: int) -> tuple[str, str, str, str, str]:
        """Returns (input mp4, output mp4, contact sheet png, output mp4 for download, status text)."""
        from avdit.media import write_mp4
        from avdit.apps.render import contact_sheet, save_png

        layout = self.layout
        task = task_from_cells(video_cells, audio_cells, layout)
        video, audio = self.inputs(task, source, bt_index, video_file, audio_file)
        folder = self.new_folder()
        shown_video = video if video is not None else np.full((layout.frames, layout.height, layout.width, 3), 16,
                                                                np.uint8)
        shown_audio = audio if audio is not None else np.zeros(layout.num_samples, np.float32)
        write_mp4(folder / "input.mp4", shown_video, shown_audio, layout.fps, layout.sample_rate)
        result = self.pipe(task, video, audio, seed=int(seed), sampling=sampling)
        write_mp4(folder / "output.mp4", result.video[0], result.audio[0], layout.fps, layout.sample_rate)
        save_png(folder / "contact_sheet.png", contact_sheet(result.video, result.audio, layout,
                                                             task.given.numpy()))
        passes = [MODALITIES[m] for m in sampler_passes(task.given, sampling.order)]
        order = "" if not passes else (f" ({passes[0]} first, then {', then '.join(passes[1:])} given the other: "
                                       f"{len(passes) * sampling.steps} steps in all)")
        status = (f"Generated with {sampling.steps} {SAMPLER_NAMES[sampling.sampler]} steps{order}, seed {int(seed)}."
                  f"\n\n```\n{task}\n```")
        output = str(folder / "output.mp4")
        return str(folder / "input.mp4"), output, str(folder / "contact_sheet.png"), output, status


def sampling_controls(gr, preset: str = "default") -> list:
    """The page's sampling controls, made from ``SamplingConfig``'s fields (their help is the controls' info): the
    preset, then ``SAMPLING_CONTROLS``, showing the preset's values."""
    about = {f.name: f.metadata["help"] for f in fields(SamplingConfig)}
    sampler, steps, video, audio, order = on_sampling_preset(preset)
    return [
        gr.Radio(list(SamplingConfig.PRESETS), value=preset, label="sampling preset", elem_id="sampling-preset",
                 info="; ".join(f"{n}: {c.describe()}" for n, c in SamplingConfig.PRESETS.items())),
        gr.Dropdown(list(SAMPLERS), value=sampler, label="sampler", info=about["sampler"], elem_id="sampler"),
        gr.Slider(1, 250, value=steps, step=1, label="steps", info=about["steps"], elem_id="steps"),
        gr.Slider(0, 5, value=video, step=0.5, label="guidance (video)", info=about["guidance"]),
        gr.Slider(0, 5, value=audio, step=0.5, label="guidance (audio)"),
        gr.Dropdown(list(ORDERS), value=order, label="order", info=about["order"], allow_custom_value=True,
                    elem_id="order"),
    ]


def on_sampling_preset(name: str) -> list:
    """The values of ``SAMPLING_CONTROLS`` a preset has (the page shows them when the preset is picked)."""
    config = SamplingConfig.preset(name)
    return [config.sampler, config.steps, *config.guidance_pair, config.order]


def sampling_from_controls(preset: str, sampler: str, steps: float, guidance_video: float, guidance_audio: float,
                           order: str) -> SamplingConfig:
    """The page's controls as a ``SamplingConfig``: the preset with the controls' values."""
    video, audio = float(guidance_video), float(guidance_audio)
    return SamplingConfig.preset(preset).replace(sampler=sampler, steps=int(steps), order=order,
                                                 guidance=video if video == audio else (video, audio))


def build_app(pipe, max_upload_mb: int = 50, max_streams: int = 1):
    """The Gradio Blocks page around ``pipe`` (a ``Pipeline``); ``app.live`` holds its live streams, which
    ``add_live_route`` serves."""
    import gradio as gr
    from gradio.utils import get_upload_folder

    layout = pipe.layout
    labels = segment_labels(layout)
    requests = PageRequests(pipe, upload_dir=get_upload_folder())
    live = LiveStreams(pipe, max_streams)
    sources = [BT_SOURCE, UPLOAD_SOURCE] if requests.bouncing_tones else [UPLOAD_SOURCE]

    def on_preset(name):
        video_cells, audio_cells = preset_cells(name, layout)
        return gr.update(value=video_cells), gr.update(value=audio_cells)

    def on_generate(*args, progress=gr.Progress(track_tqdm=True)):
        inputs, controls, seed_value = args[:6], args[6:-1], args[-1]
        try:
            return requests(*inputs, sampling_from_controls(*controls), seed_value)
        except Exception as err:  # bad file, impossible grid: said in the page, no stack trace
            if not isinstance(err, (ValueError, OSError)):
                traceback.print_exc()
            return None, None, None, None, f"**Could not generate:** {page_message(err)}"

    with gr.Blocks(title="avdit: one model, every audio-video task",
                   delete_cache=(CACHE_SWEEP_S, CACHE_MAX_AGE_S)) as app:
        gr.Markdown("# avdit: one model, every audio-video task\nPick an input, tick the **given** cells of "
                    "the task grid (or a preset), and generate the rest. "
                    f"Clips are {float(layout.duration):.3f} s: {layout.frames} frames at {layout.fps} fps, "
                    f"{layout.height}x{layout.width}, audio at {layout.sample_rate} Hz; longer inputs are cut "
                    f"to their start. Uploads up to {max_upload_mb} MB.")
        with gr.Row():
            with gr.Column():
                source = gr.Radio(sources, value=sources[0], label="input", elem_id="source")
                bt_index = gr.Dropdown(list(range(BT_CLIPS)), value=0, label="held-out Bouncing Tones clip",
                                       elem_id="bt-index", visible=requests.bouncing_tones)
                video_file = gr.File(label="video file (mp4, mkv, webm, ...)", file_types=["video"],
                                     type="filepath", elem_id="video-file")
                audio_file = gr.File(label="audio file (wav, mp3, flac, ...), or the video's own audio",
                                     file_types=["audio"], type="filepath", elem_id="audio-file")
            with gr.Column():
                task_preset = gr.Radio(list(SHOWN_PRESETS), value="av_continue", label="task preset",
                                       info="; ".join(f"{n}: {TASK_PRESETS[n][0]}" for n in SHOWN_PRESETS),
                                       elem_id="preset")
                start_video, start_audio = preset_cells("av_continue", layout)
                video_cells = gr.CheckboxGroup(labels, value=start_video, label="given video segments",
                                               elem_id="video-cells")
                audio_cells = gr.CheckboxGroup(labels, value=start_audio, label="given audio segments",
                                               elem_id="audio-cells")
                sampling_preset, *sampling = sampling_controls(gr, sampling_preset_of(getattr(pipe, "info", {})))
                seed = gr.Number(0, precision=0, label="seed")
                run = gr.Button("Generate", variant="primary", elem_id="generate")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            shown_input = gr.Video(label="input", elem_id="input-video")
            shown_output = gr.Video(label="generated", elem_id="output-video")
        sheet = gr.Image(label="contact sheet (green bar: given, orange: generated)", elem_id="sheet")
        download = gr.File(label="download the generated mp4", elem_id="download")
        gr.Markdown("## Live\nAn endless stream, played with its sound as it is made: joint generation, or a "
                    "continuation of the input above (a Bouncing Tones clip or the uploaded video's first "
                    f"{float(layout.duration):.3f} s). Stop ends the generation on the server; so does closing "
                    "the page.")
        with gr.Row():
            live_task = gr.Radio(list(LIVE_TASKS), value=LIVE_TASKS[0], label="live task", elem_id="live-task")
            live_start = gr.Button("Start", variant="primary", elem_id="live-start")
            live_stop = gr.Button("Stop", elem_id="live-stop")
        live_video = gr.HTML(elem_id="live-player")
        live_status = gr.Markdown(elem_id="live-status")
        live_id = gr.Textbox(visible=False)  # the stream this page plays (a gr.State would hold a connection open)

        def on_live_start(key, task_name, source_name, index, video_path, seed_value):
            live.stop(key)  # this page's earlier stream, if any
            try:
                task = get_task(task_name, layout.num_segments)
                video, audio = (None, None) if task_name == "joint" else requests.inputs(
                    task, source_name, index, video_path, None)  # the video's own audio
                stream = live.open({"task": task_name, "video": video, "audio": audio, "seed": int(seed_value)})
            except StreamBusy as err:
                return None, "", f"**Please wait:** {err}"
            except Exception as err:
                if not isinstance(err, (ValueError, OSError)):
                    traceback.print_exc()
                return None, "", f"**Could not start:** {page_message(err)}"
            player = (f'<video id="live-video" data-stream="{LIVE_ROUTE}/{stream.id}.mp4" autoplay controls '
                      'playsinline style="width:256px;height:256px;image-rendering:pixelated"></video>')
            return stream.id, player, "Starting: making the first window..."

        def on_live_stop(key):
            stream = live.get(key) if key else None
            if stream is None:
                return None, "", ""
            live.stop(key)
            return None, "", status_line(stream)

        def on_live_status(key):  # while the stream runs, its figures once a second
            stream = live.get(key) if key else None
            if stream is None:  # none started: keep what Start said ("Please wait", an error); an empty end clears it
                yield gr.update()
                return
            while stream.running:
                yield status_line(stream)
                time.sleep(1.0)
            yield status_line(stream)

        live_start.click(on_live_start, [live_id, live_task, source, bt_index, video_file, seed],
                         [live_id, live_video, live_status], api_name=False).then(
            None, js=LIVE_PLAYER_JS).then(
            on_live_status, [live_id], [live_status], api_name=False, concurrency_limit=None, show_progress="hidden")
        live_stop.click(on_live_stop, [live_id], [live_id, live_video, live_status], api_name=False,
                        concurrency_limit=None)
        task_preset.change(on_preset, task_preset, [video_cells, audio_cells])
        sampling_preset.change(on_sampling_preset, sampling_preset, sampling)
        run.click(on_generate, [source, bt_index, video_file, audio_file, video_cells, audio_cells, sampling_preset,
                                *sampling, seed],
                  [shown_input, shown_output, sheet, download, status], api_name="generate")
    app.queue()
    app.live = live
    return app


def add_live_route(app) -> None:
    """``GET {LIVE_ROUTE}/ID.mp4`` on the launched app's server: the live stream ID as one fragmented mp4 that never
    ends. Only the page's Start makes an ID (behind the page's login, when it has one), and an ID is unguessable.
    The stream stops when the response ends: the viewer stopped, closed the page or lost the connection."""
    import anyio
    from fastapi import HTTPException
    from fastapi.responses import StreamingResponse

    async def live_stream(key: str):
        stream = app.live.get(key.removesuffix(".mp4"))
        if stream is None:
            raise HTTPException(404, "no such live stream: press Start in the page")

        async def body():
            try:
                while (data := await anyio.to_thread.run_sync(stream.read, 0.5)) is not None:
                    if data:
                        yield data
            finally:
                stream.stop()

        return StreamingResponse(body(), media_type="video/mp4", headers={"Cache-Control": "no-store"})

    app.server_app.add_api_route(LIVE_ROUTE + "/{key}", live_stream, methods=["GET"])


def serve(checkpoint: str | None = None, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: int = 50,
          block: bool = True, device: str | None = None, auth: str | tuple[str, str] | None = None,
          max_streams: int = 1):
    """Start the app; returns it (with ``block=False``, the server runs in a background thread).

    ``auth``: 'USER:PASSWORD' (or a pair) the page asks for; without it anyone who reaches it can use it.
    ``max_streams``: live streams at once (a further viewer is told to wait).
    """
    from avdit.pipeline import Pipeline

    login = parse_auth(auth)
    pipe = Pipeline.from_pretrained(checkpoint, device=device)
    app = build_app(pipe, max_upload_mb, max_streams)
    local = host in LOCAL_HOSTS
    where = "only this machine can reach it" if local else f"reachable from other machines on {host}"
    url_host = f"[{host}]" if ":" in host else host
    print(f"avdit serve: http://{url_host}:{port} ({where}; --host 0.0.0.0 to share it)", flush=True)
    if not local and login is None:
        print(f"WARNING: avdit serve has no login and listens on {host}: anyone who can reach port {port} can use "
              "the page, upload files to this machine and run the model. Give --auth USER:PASSWORD, or keep the "
              "default --host 127.0.0.1.", flush=True)
    elif not local:
        print(f"note: others can reach the page on {host}; it asks for a login, sent unencrypted over plain HTTP.",
              flush=True)
    app.launch(server_name=host, server_port=port, max_file_size=f"{max_upload_mb}mb", prevent_thread_lock=True,
               quiet=True, show_error=True, auth=login)
    add_live_route(app)
    if block:
        try:
            app.block_thread()
        finally:
            app.live.stop_all()
    return app
