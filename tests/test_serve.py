"""avdit serve end to end in a real headless Chromium (Debian's, driven by Playwright)."""

import os
import shutil
import socket
from pathlib import Path

import pytest

from avdit.serve import preset_cells, segment_labels, task_from_cells
from avdit.layout import ClipLayout
from avdit.tasks import TaskError, get_task

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def test_grid_cells_and_presets_round_trip():
    layout = ClipLayout()
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
    browser_or_skip()
    from avdit.serve import serve

    port = free_port()
    app = serve(str(checkpoint / "run"), port=port, block=False)
    yield f"http://127.0.0.1:{port}"
    app.close()


@pytest.fixture
def page(server):
    sync_api = browser_or_skip()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page()
        page.goto(server)
        page.wait_for_selector("#generate")
        page.wait_for_load_state("networkidle")
        yield page
        browser.close()


def test_generate_av_continue_from_a_bouncing_tones_clip(page, tmp_path):
    from avdit.media import probe

    page.get_by_role("radio", name="av_continue").check()
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
    assert "Traceback" not in page.content()


def test_an_impossible_grid_is_refused_in_the_page(page):
    page.get_by_role("radio", name="v2a").check()
    page.wait_for_function("() => document.querySelectorAll('#video-cells input:checked').length == 5 &&"
                           " document.querySelectorAll('#audio-cells input:checked').length == 0")  # preset applied
    for n in range(5):
        page.locator("#audio-cells input[type=checkbox]").nth(n).check()  # now every cell is given
    page.locator("#generate").click()
    page.locator("#status").get_by_text("nothing left to generate", exact=False).wait_for(timeout=60_000)


def test_uploads_are_read_only_for_the_given_modalities(checkpoint, tmp_path):
    from avdit.data import bouncing_tones as bt
    from avdit.media import probe, write_wav
    from avdit.pipeline import Pipeline
    from avdit.serve import PageRequests

    pipe = Pipeline.from_pretrained(checkpoint / "run")
    layout = pipe.layout
    wav = tmp_path / "tones.wav"
    write_wav(wav, bt.make_clip(0, 3, "test").audio, 16000)
    requests = PageRequests(pipe, tmp_path / "out")
    labels = segment_labels(layout)
    shown, output, sheet, download, status = requests("upload", 0, None, str(wav), [], labels, 2, 0.0, 0.0, 0)
    assert probe(output).has_audio and probe(output).has_video and output == download
    assert "audio G G G G G" in status  # a2v from the wav alone
    with pytest.raises(TaskError, match="no video was uploaded"):
        requests("upload", 0, None, str(wav), labels, [], 2, 0.0, 0.0, 0)


def test_a_bad_upload_is_a_clear_error_for_the_page(checkpoint, tmp_path):
    from avdit.media import MediaError
    from avdit.pipeline import Pipeline
    from avdit.serve import PageRequests

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    requests = PageRequests(Pipeline.from_pretrained(checkpoint / "run"), tmp_path / "out")
    cells = preset_cells("av_continue", ClipLayout())
    with pytest.raises(MediaError, match="broken.mp4: not a readable media file"):
        requests("upload", 0, str(bad), None, *cells, 2, 0.0, 0.0, 0)


def test_the_default_output_folder_goes_with_the_server(checkpoint):
    import gc

    from avdit.pipeline import Pipeline
    from avdit.serve import PageRequests

    requests = PageRequests(Pipeline.from_pretrained(checkpoint / "run"))
    folder = requests.out_dir
    shown, *_ = requests("bouncing-tones", 0, None, None, *preset_cells("av_continue", ClipLayout()), 2, 0.0, 0.0, 0)
    assert folder.is_dir() and Path(shown).parent.parent == folder
    del requests
    gc.collect()
    assert not folder.exists()  # nothing left in /tmp after each `avdit serve`
