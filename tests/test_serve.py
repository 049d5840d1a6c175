"""avdit serve: its HTTP API and, end to end, a real headless Chromium (Debian's, driven by Playwright)."""

import dataclasses
import json
import os
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from avdit.apps.serve import BOUNCING_TONES, preset_cells, segment_labels, task_from_cells
from avdit.diffusion import SamplingConfig
from avdit.tasks import TaskError, get_task
from tests.real_files import HIDE_OPTIONAL, optional_hidden

FAST = SamplingConfig(steps=2, guidance=0.0)  # the page's requests in these tests

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def test_grid_cells_and_presets_round_trip():
    layout = BOUNCING_TONES
    labels = segment_labels(layout)
    assert labels[0] == "0 (0.00-0.12 s)" and len(labels) == layout.num_segments
    for name in ("joint", "a2v", "v2a", "av_continue", "av_inpaint"):
        task = task_from_cells(*preset_cells(name, layout), layout)
        assert (task.given == get_task(name, layout.num_segments).given).all()
    with pytest.raises(TaskError, match="nothing left"):
        task_from_cells(labels, labels, layout)


def browser_or_skip():
    playwright = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("gradio")
    if optional_hidden():
        pytest.skip(f"{HIDE_OPTIONAL} is set: run as on a machine without chromium")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("AVDIT_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (.ci/run does)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(checkpoint):
    pytest.importorskip("gradio")
    from avdit.apps.serve import serve

    port = free_port()
    app = serve(str(checkpoint / "run"), port=port, block=False)
    yield f"http://127.0.0.1:{port}"
    app.close()


def open_page(browser, url: str):
    """A new tab on the app, once its buttons exist and its network is idle (both tabs of a test open alike)."""
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#generate")
    page.wait_for_load_state("networkidle")
    return page


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (a launch costs about 1.5 s); each test opens its own context."""
    sync_api = browser_or_skip()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(server, browser):
    page = open_page(browser, server)  # a new context: no state shared with the module's other tests
    yield page
    page.context.close()


def test_generate_av_continue_from_a_bouncing_tones_clip(page, tmp_path):
    from avdit.media import probe

    page.locator("#preset").get_by_role("radio", name="av_continue").check()
    steps = page.locator("#steps input[type=number]")
    steps.fill("2")
    steps.press("Enter")
    page.locator("#generate").click()
    page.wait_for_function("() => { const v = document.querySelector('#output-video video');"
                           " return v && v.readyState >= 1 && v.duration > 2; }", timeout=90_000)
    page.screenshot(path=str(tmp_path / "generated.png"), full_page=True)
    duration = page.evaluate("() => document.querySelector('#output-video video').duration")
    assert abs(duration - 2.125) < 0.2
    href = page.locator("#download a").first.get_attribute("href")
    body = page.request.get(href if href.startswith("http") else page.url.rstrip("/") + "/" + href.lstrip("/")).body()
    (tmp_path / "download.mp4").write_bytes(body)
    info = probe(tmp_path / "download.mp4")
    assert info.has_video and info.has_audio, info
    assert "av_continue" in page.locator("#status").inner_text() or "G G" in page.locator("#status").inner_text()


LIVE_STATE = """() => { const v = document.getElementById('live-video');
    return v ? [v.currentTime, v.webkitAudioDecodedByteCount, v.error ? v.error.message : null] : null; }"""


def test_live_stream_plays_with_sound_and_stops(page):
    """Live: Start plays an endless stream with its sound for 20 s without a stall, a second viewer is told to
    wait (and the message stays), and Stop ends the generation on the server (the second viewer can then start)."""
    page.locator("#preset").get_by_role("radio", name="av_continue").check()
    page.locator("#live-task").get_by_role("radio", name="joint").check()
    page.locator("#live-start").click()
    page.wait_for_function("() => { const v = document.getElementById('live-video'); return v && v.currentTime > 0; }",
                           timeout=60_000)
    times, audio = [], []
    for _ in range(21):  # a sample a second, for 20 s of playback
        current, decoded, error = page.evaluate(LIVE_STATE)
        assert error is None
        times.append(current)
        audio.append(decoded)
        page.wait_for_timeout(1000)
    steps = np.diff(times)
    assert times[-1] - times[0] >= 18, times  # played on, in real time
    assert steps.min() > 0.5, times  # no stall after the start
    assert audio[0] > 0 and audio[-1] > audio[0], audio  # an audio track, decoded as it plays
    # playing, and on a fast machine the generation may be waiting for playback to catch up
    assert page.locator("#live-status").inner_text().startswith("Live (playing"), page.locator("#live-status").inner_text()

    second = open_page(page.context.browser, page.url)
    second.locator("#live-start").click()
    second.wait_for_function("() => document.getElementById('live-status').innerText.includes('Please wait')",
                             timeout=30_000)
    assert second.locator("#live-video").count() == 0
    second.wait_for_timeout(3000)  # the message stays: the status updates after Start must not clear it
    assert "Please wait" in second.locator("#live-status").inner_text()

    page.locator("#live-stop").click()
    page.wait_for_function("() => !document.getElementById('live-video')", timeout=30_000)
    second.wait_for_timeout(3000)  # the generation ends after the window it is making
    second.locator("#live-start").click()
    second.wait_for_function("() => { const v = document.getElementById('live-video');"
                             " return v && v.currentTime > 0; }", timeout=60_000)
    second.locator("#live-stop").click()
    second.close()


def test_a_bad_upload_shows_an_error_in_the_page(page, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    page.get_by_role("radio", name="upload").check()
    with page.expect_response(lambda r: "upload" in r.url, timeout=30_000):
        page.locator("#video-file input[type=file]").set_input_files(str(bad))
    # the widget lists the uploaded file (its name split into stem and extension spans) once it holds it
    page.locator('#video-file td.filename[aria-label="broken.mp4"]').wait_for(timeout=30_000)
    page.locator("#generate").click()
    status = page.locator("#status")
    status.get_by_text("not a readable media file", exact=False).wait_for(timeout=60_000)
    page.screenshot(path=str(tmp_path / "error.png"), full_page=True)
    assert "Could not generate" in status.inner_text() and "broken.mp4" in status.inner_text()
    assert "/tmp" not in status.inner_text()  # the upload's server path is not shown
    assert "Traceback" not in page.content()


def test_an_impossible_grid_is_refused_in_the_page(page):
    page.get_by_role("radio", name="v2a").check()
    page.wait_for_function("() => document.querySelectorAll('#video-cells input:checked').length == 5 &&"
                           " document.querySelectorAll('#audio-cells input:checked').length == 0")  # preset applied
    for n in range(5):
        page.locator("#audio-cells input[type=checkbox]").nth(n).check()  # now every cell is given
    page.locator("#generate").click()
    page.locator("#status").get_by_text("nothing left to generate", exact=False).wait_for(timeout=60_000)


def write_clip(path: Path) -> Path:
    """A real mp4 (a Bouncing Tones clip) at ``path``."""
    from avdit.data import bouncing_tones as bt
    from avdit.media import write_mp4

    clip = bt.make_clip(0, 5, "test")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, clip.video, clip.audio, bt.FPS, bt.SAMPLE_RATE)
    return path


def api_upload(server: str, path: Path) -> str:
    """Upload ``path`` as the page does; the server's path of the upload."""
    import httpx

    response = httpx.post(f"{server}/gradio_api/upload", files=[("files", (path.name, path.read_bytes()))])
    response.raise_for_status()
    return response.json()[0]


def api_generate(server: str, video: str | Path | None, audio: str | Path | None = None):
    """The page's generate call over raw HTTP, naming files by path: (last event, its data)."""
    import httpx

    def file_data(path):
        return None if path is None else {"path": str(path), "meta": {"_type": "gradio.FileData"}}

    sampling = ["default", FAST.sampler, FAST.steps, FAST.guidance, FAST.guidance, FAST.order]  # the page's controls
    data = ["upload", 0, file_data(video), file_data(audio), *preset_cells("av_continue", BOUNCING_TONES), *sampling, 0]
    response = httpx.post(f"{server}/gradio_api/call/generate", json={"data": data}, timeout=30)
    response.raise_for_status()
    with httpx.stream("GET", f"{server}/gradio_api/call/generate/{response.json()['event_id']}",
                      timeout=120) as stream:
        text = stream.read().decode()
    last = None
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("event") in ("complete", "error"):
            last = fields["event"], json.loads(fields["data"])
    assert last, text
    return last


def assert_refused(event, data, name: str):
    """No video in the answer, and it says ``name`` was not uploaded (Gradio's refusal or the page's)."""
    if event == "error":  # Gradio refuses it before the page is called
        assert "not uploaded" in json.dumps(data), data
        return
    shown, output, sheet, download, status = data
    assert shown is None and output is None and sheet is None and download is None, data
    assert f"{name}: was not uploaded to this page" in status and "/" not in status, status


def test_the_api_reads_only_uploaded_files(server, tmp_path, monkeypatch):
    private = write_clip(tmp_path / "secret" / "private.mp4")
    write_clip(tmp_path / "cwd" / "here.mp4")
    monkeypatch.chdir(tmp_path / "cwd")  # the server's working directory too
    for named in (private, tmp_path / "cwd" / "here.mp4", "here.mp4", "../secret/private.mp4"):
        assert_refused(*api_generate(server, named), Path(named).name)
        assert_refused(*api_generate(server, None, named), Path(named).name)
    event, (shown, output, sheet, download, status) = api_generate(server, api_upload(server, private))
    assert event == "complete" and status.startswith("Generated"), status
    assert "input.mp4" in json.dumps(shown) and "output.mp4" in json.dumps(output)


def test_the_page_refuses_a_path_gradio_passes_through(server, tmp_path, monkeypatch):
    from gradio.data_classes import _StaticFiles

    private = write_clip(tmp_path / "private.mp4")
    # files under static paths reach the handler as named, not copied to the upload folder: the page's check
    monkeypatch.setattr(_StaticFiles, "all_paths", [tmp_path.resolve()])
    event, data = api_generate(server, private)
    assert event == "complete"
    assert_refused(event, data, "private.mp4")


def test_api_errors_name_the_upload_without_its_path(server, tmp_path):
    from gradio.utils import get_upload_folder

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    event, (*files, status) = api_generate(server, api_upload(server, bad))
    assert event == "complete" and files == [None] * 4
    assert "Could not generate:** broken.mp4: not a readable media file" in status, status
    assert get_upload_folder() not in status and "/" not in status, status


def test_page_message_names_files_only():
    from avdit.media import MediaError
    from avdit.apps.serve import page_message

    assert page_message(MediaError("/srv/uploads/ab12/clip.mp4", "no video stream")) == "clip.mp4: no video stream"
    assert page_message(FileNotFoundError(2, "No such file", "/root/x/y.wav")) == "y.wav: No such file"
    assert page_message(ValueError("cannot open /root/secret/a.mp4 now")) == "cannot open a.mp4 now"
    assert page_message(RuntimeError("/root/secret/a.mp4")).startswith("internal error (RuntimeError)")


def test_uploads_are_read_only_for_the_given_modalities(checkpoint, tmp_path):
    from avdit.data import bouncing_tones as bt
    from avdit.media import probe, write_wav
    from avdit.pipeline import Pipeline
    from avdit.apps.serve import PageRequests

    pipe = Pipeline.from_pretrained(checkpoint / "run")
    layout = pipe.layout
    wav = tmp_path / "uploads" / "tones.wav"
    wav.parent.mkdir()
    write_wav(wav, bt.make_clip(0, 3, "test").audio, 16000)
    requests = PageRequests(pipe, tmp_path / "out", upload_dir=tmp_path / "uploads")
    labels = segment_labels(layout)
    shown, output, sheet, download, status = requests("upload", 0, None, str(wav), [], labels, FAST, 0)
    assert probe(output).has_audio and probe(output).has_video and output == download
    assert "audio G G G G G" in status  # a2v from the wav alone
    with pytest.raises(TaskError, match="no video was uploaded"):
        requests("upload", 0, None, str(wav), labels, [], FAST, 0)


def test_page_requests_refuse_files_outside_the_upload_folder(checkpoint, tmp_path, monkeypatch):
    from avdit.pipeline import Pipeline
    from avdit.apps.serve import NotAnUpload, PageRequests

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    private = write_clip(tmp_path / "private.mp4")
    (uploads / "link.mp4").symlink_to(private)
    monkeypatch.chdir(tmp_path)
    requests = PageRequests(Pipeline.from_pretrained(checkpoint / "run"), tmp_path / "out", upload_dir=uploads)
    cells = preset_cells("av_continue", requests.layout)
    for named in (private, "private.mp4", uploads / ".." / "private.mp4", uploads / "link.mp4"):
        for video, audio in ((named, None), (None, named), (uploads / "link.mp4", named)):
            with pytest.raises(NotAnUpload, match=r"^[\w.]+: was not uploaded to this page$"):
                requests("upload", 0, video and str(video), audio and str(audio), *cells, FAST, 0)
    assert not list((tmp_path / "out").iterdir())  # refused before anything was written
    shutil.copy(private, uploads / "clip.mp4")
    *_, status = requests("upload", 0, str(uploads / "clip.mp4"), None, *cells, FAST, 0)
    assert status.startswith("Generated")


def test_a_bad_upload_is_a_clear_error_for_the_page(checkpoint, tmp_path):
    from avdit.media import MediaError
    from avdit.pipeline import Pipeline
    from avdit.apps.serve import PageRequests, page_message

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    requests = PageRequests(Pipeline.from_pretrained(checkpoint / "run"), tmp_path / "out", upload_dir=tmp_path)
    cells = preset_cells("av_continue", requests.layout)
    with pytest.raises(MediaError, match="broken.mp4: not a readable media file") as caught:
        requests("upload", 0, str(bad), None, *cells, FAST, 0)
    assert page_message(caught.value).startswith("broken.mp4: not a readable media file")
    assert str(tmp_path) not in page_message(caught.value)


def test_the_default_output_folder_goes_with_the_server(checkpoint, tmp_path):
    import gc

    from avdit.pipeline import Pipeline
    from avdit.apps.serve import BT_SOURCE, PageRequests

    requests = PageRequests(Pipeline.from_pretrained(checkpoint / "run"), upload_dir=tmp_path)
    folder = requests.out_dir
    shown, *_ = requests(BT_SOURCE, 0, None, None, *preset_cells("av_continue", requests.layout), FAST, 0)
    assert folder.is_dir() and Path(shown).parent.parent == folder
    del requests
    gc.collect()
    assert not folder.exists()  # nothing left in /tmp after each `avdit serve`


def test_only_the_latest_request_folders_are_kept(checkpoint, tmp_path, monkeypatch):
    from avdit.apps import serve
    from avdit.pipeline import Pipeline

    assert serve.MAX_KEPT_REQUESTS >= 8
    monkeypatch.setattr(serve, "MAX_KEPT_REQUESTS", 3)
    requests = serve.PageRequests(Pipeline.from_pretrained(checkpoint / "run"), tmp_path / "out",
                                  upload_dir=tmp_path)
    cells = preset_cells("av_continue", requests.layout)
    outputs = [requests(serve.BT_SOURCE, n, None, None, *cells, FAST.replace(steps=1), n)[1] for n in range(5)]
    assert [Path(o).exists() for o in outputs] == [False, False, True, True, True]
    assert sorted((tmp_path / "out").iterdir()) == sorted(Path(o).parent for o in outputs[2:])


def test_a_model_with_other_clips_is_offered_uploads_only(tmp_path):
    pytest.importorskip("gradio")
    from avdit.apps.serve import BT_SOURCE, UPLOAD_SOURCE, PageRequests, build_app

    def offered(app):
        blocks = {getattr(b, "elem_id", None): b for b in app.blocks.values()}
        return [value for _, value in blocks["source"].choices], blocks["source"].value, blocks["bt-index"].visible

    assert offered(build_app(SimpleNamespace(layout=BOUNCING_TONES))) == ([BT_SOURCE, UPLOAD_SOURCE], BT_SOURCE, True)
    other = SimpleNamespace(layout=dataclasses.replace(BOUNCING_TONES, height=32, width=32))
    assert offered(build_app(other)) == ([UPLOAD_SOURCE], UPLOAD_SOURCE, False)
    requests = PageRequests(other, tmp_path / "out", upload_dir=tmp_path)
    with pytest.raises(ValueError, match="not Bouncing Tones clips: upload"):
        requests(BT_SOURCE, 0, None, None, *preset_cells("av_continue", other.layout), FAST, 0)


def test_other_hosts_are_warned_about(checkpoint, capsys):
    pytest.importorskip("gradio")
    from avdit.apps.serve import serve

    app = serve(str(checkpoint / "run"), host="0.0.0.0", port=free_port(), block=False)
    app.close()
    out = capsys.readouterr().out
    assert "WARNING: avdit serve has no login and listens on 0.0.0.0" in out and "--auth USER:PASSWORD" in out


def test_auth_is_asked_for(checkpoint, capsys):
    pytest.importorskip("gradio")
    import httpx

    from avdit.apps.serve import parse_auth, serve

    assert parse_auth("ann:s3:cret") == ("ann", "s3:cret")
    for bad in ("ann", "ann:", ":s3cret"):
        with pytest.raises(ValueError, match="USER:PASSWORD"):
            serve(str(checkpoint / "run"), port=free_port(), block=False, auth=bad)
    port = free_port()
    app = serve(str(checkpoint / "run"), host="0.0.0.0", port=port, block=False, auth="ann:s3cret")
    try:
        out = capsys.readouterr().out
        assert "asks for a login" in out and "WARNING" not in out
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/config").status_code == 401
            assert client.post("/gradio_api/call/generate", json={"data": []}).status_code == 401
            assert client.post("/login", data={"username": "ann", "password": "wrong"}).status_code >= 400
            assert client.post("/login", data={"username": "ann", "password": "s3cret"}).status_code == 200
            assert client.get("/config").status_code == 200
    finally:
        app.close()


def test_live_streams_hold_one_at_a_time_and_a_stopped_one_frees_its_slot():
    """A second stream is refused while one plays; Stop frees the slot at once (the stopped stream only finishes
    the window it is making), and the stopped stream's response ends."""
    import threading

    from avdit.apps.live import LiveStreams, StreamBusy

    release = threading.Event()

    class SlowPipe:  # one window, then it waits as a model making the next window would
        layout = BOUNCING_TONES

        def stream(self, duration=None, **request):
            from types import SimpleNamespace

            from avdit.data.bouncing_tones import make_clip

            clip = make_clip(0, 1, "test")
            yield SimpleNamespace(video=clip.video[None], audio=clip.audio[None])
            release.wait(30)
            yield SimpleNamespace(video=clip.video[None, :12], audio=clip.audio[None, :24000])

    live = LiveStreams(SlowPipe(), max_streams=1)
    first = live.open({})
    for _ in range(100):  # until its first window is written
        if first.stats.first_picture_s is not None:
            break
        threading.Event().wait(0.1)
    with pytest.raises(StreamBusy, match="wait until it stops"):
        live.open({})
    live.stop(first.id)
    second = live.open({})  # while the first still finishes its window
    assert first.running and second.id != first.id
    release.set()
    first.thread.join(10)
    data = b""
    while (part := first.read(0.1)) is not None:
        data += part
    assert data[4:8] == b"ftyp" and not first.running  # what it made was sent, then the response ends
    second.stop()
    second.thread.join(10)
    assert not second.running


def test_a_live_stream_waits_for_playback_once_it_is_its_lead_ahead():
    """Generation keeps at most ``lead_s`` of content ahead of playback: a pipe that makes 1-s windows at once is
    held there (a viewer's buffer and the server's work stay bounded), its waiting is not counted in its speed,
    and Stop still ends it while it waits."""
    import time
    from types import SimpleNamespace

    from avdit.apps.live import LiveStream, status_line
    from avdit.data.bouncing_tones import make_clip

    class EndlessPipe:  # 1 s of content a window, as fast as the muxer takes it
        layout = BOUNCING_TONES

        def stream(self, duration=None, **request):
            clip = make_clip(0, 1, "test")
            while True:
                yield SimpleNamespace(video=clip.video[None, :8], audio=clip.audio[None, :16000])

    stream = LiveStream(EndlessPipe(), {}, lead_s=2.0).start()
    try:
        for _ in range(100):  # until its first window is written
            if stream.stats.first_picture_s is not None:
                break
            time.sleep(0.05)
        time.sleep(2.0)
        playback = time.perf_counter() - stream.stats.started - stream.stats.first_picture_s
        assert 2.0 <= stream.stats.made_s <= playback + 2.0 + 1.0 + 0.5  # the lead, one window, the wait's step
        assert stream.stats.waited_s > 0.5 and stream.stats.speed() > 2.0  # it waited; its speed is its own
        for _ in range(20):  # it waits most of the time: between two windows' writes
            if stream.waiting:
                break
            time.sleep(0.05)
        assert "generation waits for playback 2 s ahead" in status_line(stream)
        assert stream.running
    finally:
        stream.stop()
        stream.thread.join(5)
    assert not stream.running


def test_freed_memory_goes_back_to_the_system_between_live_windows():
    """``release_freed_memory`` (called after every live window) hands back the pages a fragmented C heap holds
    free: 200 MB of freed blocks, every 50th kept, stay resident until it runs."""
    import gc

    from avdit.apps.live import _libc, release_freed_memory, resident_mb

    if _libc() is None or np.isnan(resident_mb()):
        pytest.skip("no glibc malloc_trim or /proc on this system: nothing to hand back")
    release_freed_memory()
    blocks = [bytes(4000) for _ in range(50_000)]  # malloc'd blocks (above Python's small-object allocator)
    kept = blocks[::50]
    del blocks
    gc.collect()
    held = resident_mb()
    release_freed_memory()
    assert resident_mb() < held - 100, "freed pages stayed resident"
    assert len(kept) == 1000
