"""``avdit serve``: every task in the browser (Gradio), with the bundled model or a checkpoint.

The page: an input (a held-out Bouncing Tones clip, or an uploaded video and/or audio file), the task grid as
clickable cells (given segments of video and of audio) with the presets as one-click choices, the sampler
settings, and the result: the generated clip (video with its audio) beside the input, its contact sheet, and
the mp4 to download. Bad input is reported in the page; the server binds to 127.0.0.1 unless told otherwise
and refuses uploads over a size limit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from avdit.diffusion.conditioning import DEFAULT_GUIDANCE
from avdit.layout import AUDIO, MODALITIES, VIDEO
from avdit.tasks import PRESETS as TASK_PRESETS
from avdit.tasks import TaskError, get_task

SHOWN_PRESETS = ("joint", "a2v", "v2a", "av_continue", "av_inpaint")
BT_CLIPS = 16  # held-out Bouncing Tones clips offered in the page


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
    """What the page calls: one request in, files out (mp4s and the contact sheet in a fresh folder)."""

    def __init__(self, pipe, out_dir: str | Path | None = None):
        """Without ``out_dir`` the files go to a temporary folder removed when the server's process ends."""
        self.pipe, self.layout = pipe, pipe.layout
        self._temporary = None if out_dir else tempfile.TemporaryDirectory(prefix="avdit-serve-")
        self.out_dir = Path(out_dir or self._temporary.name)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, source: str, bt_index: int, video_file: str | None, audio_file: str | None,
                 video_cells: list[str], audio_cells: list[str], steps: int, guidance_video: float,
                 guidance_audio: float, seed: int) -> tuple[str, str, str, str, str]:
        """Returns (input mp4, output mp4, contact sheet png, output mp4 for download, status text)."""
        from avdit.data import bouncing_tones as bt
        from avdit.media import read_clip, write_mp4
        from avdit.render import contact_sheet, save_png

        layout = self.layout
        task = task_from_cells(video_cells, audio_cells, layout)
        folder = Path(tempfile.mkdtemp(prefix="request-", dir=self.out_dir))
        if source == "upload":
            if not video_file and not audio_file:
                raise ValueError("upload a video or an audio file, or choose a Bouncing Tones clip")
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
        else:
            clip = bt.make_clip(0, int(bt_index), "test")
            video, audio = clip.video, clip.audio
        shown_video = video if video is not None else np.full((layout.frames, layout.height, layout.width, 3), 16,
                                                                np.uint8)
        shown_audio = audio if audio is not None else np.zeros(layout.num_samples, np.float32)
        write_mp4(folder / "input.mp4", shown_video, shown_audio, layout.fps, layout.sample_rate)
        result = self.pipe(task=task, video=video, audio=audio, steps=int(steps),
                           guidance=(float(guidance_video), float(guidance_audio)), seed=int(seed), progress=True)
        write_mp4(folder / "output.mp4", result.video[0], result.audio[0], layout.fps, layout.sample_rate)
        save_png(folder / "contact_sheet.png", contact_sheet(result.video, result.audio, layout,
                                                             task.given.numpy()))
        status = f"Generated with {int(steps)} DDIM steps, seed {int(seed)}.\n\n```\n{task}\n```"
        output = str(folder / "output.mp4")
        return str(folder / "input.mp4"), output, str(folder / "contact_sheet.png"), output, status


def build_app(pipe, max_upload_mb: int = 50):
    """The Gradio Blocks page around ``pipe`` (a ``Pipeline``)."""
    import gradio as gr

    layout = pipe.layout
    labels = segment_labels(layout)
    requests = PageRequests(pipe)

    def on_preset(name):
        video_cells, audio_cells = preset_cells(name, layout)
        return gr.update(value=video_cells), gr.update(value=audio_cells)

    def on_generate(*args, progress=gr.Progress(track_tqdm=True)):
        try:
            return requests(*args)
        except (ValueError, OSError) as err:  # bad file, impossible grid: said in the page, no stack trace
            return None, None, None, None, f"**Could not generate:** {err}"

    with gr.Blocks(title="avdit: one model, every audio-video task") as app:
        gr.Markdown("# avdit: one model, every audio-video task\nPick an input, tick the **given** cells of "
                    "the task grid (or a preset), and generate the rest. "
                    f"Clips are {float(layout.duration):.3f} s: {layout.frames} frames at {layout.fps} fps, "
                    f"{layout.height}x{layout.width}, audio at {layout.sample_rate} Hz; longer inputs are cut "
                    f"to their start. Uploads up to {max_upload_mb} MB.")
        with gr.Row():
            with gr.Column():
                source = gr.Radio(["Bouncing Tones clip", "upload"], value="Bouncing Tones clip", label="input",
                                  elem_id="source")
                bt_index = gr.Dropdown(list(range(BT_CLIPS)), value=0, label="held-out Bouncing Tones clip",
                                       elem_id="bt-index")
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
                steps = gr.Slider(1, 250, value=25, step=1, label="DDIM steps", elem_id="steps")
                guidance_video = gr.Slider(0, 5, value=DEFAULT_GUIDANCE, step=0.5, label="guidance (video)")
                guidance_audio = gr.Slider(0, 5, value=DEFAULT_GUIDANCE, step=0.5, label="guidance (audio)")
                seed = gr.Number(0, precision=0, label="seed")
                run = gr.Button("Generate", variant="primary", elem_id="generate")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            shown_input = gr.Video(label="input", elem_id="input-video")
            shown_output = gr.Video(label="generated", elem_id="output-video")
        sheet = gr.Image(label="contact sheet (green bar: given, orange: generated)", elem_id="sheet")
        download = gr.File(label="download the generated mp4", elem_id="download")
        task_preset.change(on_preset, task_preset, [video_cells, audio_cells])
        run.click(on_generate, [source, bt_index, video_file, audio_file, video_cells, audio_cells, steps,
                                guidance_video, guidance_audio, seed],
                  [shown_input, shown_output, sheet, download, status])
    app.queue()
    return app


def serve(checkpoint: str | None = None, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: int = 50,
          block: bool = True, device: str | None = None):
    """Start the app; returns it (with ``block=False``, the server runs in a background thread)."""
    from avdit.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(checkpoint, device=device)
    app = build_app(pipe, max_upload_mb)
    where = "only this machine can reach it" if host in ("127.0.0.1", "localhost") else \
        f"reachable from other machines on {host}"
    print(f"avdit serve: http://{host}:{port} ({where}; --host 0.0.0.0 to share it)", flush=True)
    app.launch(server_name=host, server_port=port, max_file_size=f"{max_upload_mb}mb", prevent_thread_lock=not block,
               quiet=True, show_error=True)
    return app
