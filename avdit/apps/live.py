"""Live streams: an endless stream generated window by window and played in the browser as it is made.

A ``LiveStream`` runs ``Pipeline.stream`` (no end) in a thread and writes a fragmented mp4 (``Mp4Stream``) into a
bounded buffer; ``avdit serve`` sends that buffer to a ``<video>`` element as one HTTP response that never ends, which
the browser plays as it arrives. Memory holds one window and the buffer; a viewer who stops, closes the page or
drops the connection ends the generation on the server. Generation keeps at most ``LEAD_S`` seconds of content
ahead of playback and then waits for the viewer, so the viewer's buffer and the server's work stay bounded however
long the stream plays. A machine that makes one stream about twice as fast as it
plays cannot keep two ahead, so ``LiveStreams`` holds at most ``max_streams`` (one by default) and tells the next
viewer to wait.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import functools
import math
import secrets
import threading
import time
from dataclasses import dataclass, field

CHUNK_LIMIT = 8 << 20  # bytes the buffer holds before the generation waits for the viewer (back-pressure)
LEAD_S = 30.0  # seconds of content generation keeps ahead of playback at most (a viewer's browser reads as it comes)


class StreamBusy(RuntimeError):
    """Every live stream slot is taken: the viewer is told to wait."""


class StreamStopped(Exception):
    """Raised into the writer when the viewer has gone."""


def resident_mb() -> float:
    """This process's resident memory (MB), from /proc; nan where there is none."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@functools.cache
def _libc():
    """The C library where it has glibc's ``malloc_trim`` (Linux), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hands the pages the C heap holds free back to the system (glibc's ``malloc_trim``; nothing elsewhere). The
    live thread makes and frees a window's buffers while the server's other threads send them: without this, the
    server's resident memory crept up 5-9 MB a minute of play (docs/results/live.md)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class _Buffer:
    """A write-only file object for PyAV: bytes written wait here for the HTTP response to read them."""

    def __init__(self, stopped: threading.Event):
        self.parts: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.cond = threading.Condition()
        self.stopped = stopped
        self.ended = False

    def write(self, data) -> int:
        with self.cond:
            while self.size > CHUNK_LIMIT and not self.stopped.is_set():
                self.cond.wait(0.5)
            if self.stopped.is_set():
                raise StreamStopped
            self.parts.append(bytes(data))
            self.size += len(data)
            self.cond.notify_all()
        return len(data)

    def end(self) -> None:
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def read(self, timeout: float = 0.5) -> bytes | None:
        """What was written since the last read (b"" if nothing within ``timeout``); None once ended and empty."""
        with self.cond:
            if not self.parts and not self.ended:
                self.cond.wait(timeout)
            if not self.parts:
                return None if self.ended else b""
            data = b"".join(self.parts)
            self.parts.clear()
            self.size = 0
            self.cond.notify_all()
            return data


@dataclass
class LiveStats:
    started: float = field(default_factory=time.perf_counter)
    made_s: float = 0.0  # seconds of content made
    first_picture_s: float | None = None  # from start until the first window was written
    rss_mb: float = math.nan  # resident memory after the latest window
    waited_s: float = 0.0  # seconds generation waited for playback (``LiveStream.lead_s``)
    error: str | None = None

    def ahead_s(self) -> float:
        """How far generation is ahead of a viewer who started playing at the first picture."""
        if self.first_picture_s is None:
            return 0.0
        return self.made_s - (time.perf_counter() - self.started - self.first_picture_s)

    def speed(self) -> float:
        """Seconds of content made per second of generating since the start (time spent waiting for playback is
        not counted: this is how fast the machine makes the stream)."""
        return self.made_s / max(time.perf_counter() - self.started - self.waited_s, 1e-9)


class LiveStream:
    """One endless stream of ``pipe``: ``pipe.stream(**request)`` with no duration, written as a fragmented mp4,
    at most ``lead_s`` seconds of content ahead of playback (``LiveStats.ahead_s``)."""

    def __init__(self, pipe, request: dict, lead_s: float = LEAD_S):
        self.id = secrets.token_urlsafe(12)
        self.pipe, self.request, self.lead_s = pipe, request, lead_s
        self.stopped = threading.Event()
        self.buffer = _Buffer(self.stopped)
        self.stats = LiveStats()
        self.thread = threading.Thread(target=self._run, name=f"live-{self.id}", daemon=True)

    def start(self) -> "LiveStream":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        with self.buffer.cond:
            self.buffer.cond.notify_all()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    @property
    def waiting(self) -> bool:
        """Whether generation is (or, between two windows, is about to be) held: more than ``lead_s`` ahead."""
        return self.stats.ahead_s() > self.lead_s

    def _run(self) -> None:
        from avdit.media import Mp4Stream

        layout = self.pipe.layout
        try:
            with Mp4Stream(self.buffer, layout.width, layout.height, layout.fps, layout.sample_rate) as writer:
                for chunk in self.pipe.stream(**self.request, duration=None):
                    if self.stopped.is_set():
                        break
                    writer.write(chunk.video[0], chunk.audio[0])
                    self.stats.made_s += chunk.video.shape[1] / layout.fps
                    if self.stats.first_picture_s is None:
                        self.stats.first_picture_s = time.perf_counter() - self.stats.started
                    release_freed_memory()
                    self.stats.rss_mb = resident_mb()
                    self._wait_for_playback()
        except StreamStopped:
            pass
        except Exception as err:  # said in the page; the server goes on
            self.stats.error = f"{type(err).__name__}: {err}"
        finally:
            self.buffer.end()

    def _wait_for_playback(self) -> None:
        """Holds the generation (the next window is not begun) while it is more than ``lead_s`` ahead of playback,
        or until the viewer stops."""
        began = time.perf_counter()
        while self.waiting and not self.stopped.wait(0.25):
            pass
        self.stats.waited_s += time.perf_counter() - began

    def read(self, timeout: float = 0.5) -> bytes | None:
        return self.buffer.read(timeout)


class LiveStreams:
    """The live streams of one server: at most ``max_streams`` at once, found by id."""

    def __init__(self, pipe, max_streams: int = 1):
        self.pipe, self.max_streams = pipe, max_streams
        self.streams: dict[str, LiveStream] = {}
        self.lock = threading.Lock()

    def open(self, request: dict) -> LiveStream:
        with self.lock:
            for key in [k for k, s in self.streams.items() if not s.running]:
                del self.streams[key]
            # a stopped stream only finishes the window it is making: its slot is free
            playing = sum(not s.stopped.is_set() for s in self.streams.values())
            if playing >= self.max_streams:
                raise StreamBusy(f"{playing} live stream(s) already play on this server, as many as it can keep "
                                 "ahead of playback: wait until it stops, then press start again")
            stream = LiveStream(self.pipe, request).start()
            self.streams[stream.id] = stream
            return stream

    def get(self, key: str) -> LiveStream | None:
        return self.streams.get(key)

    def stop(self, key: str) -> None:
        """Ends a stream's generation after the window it is making."""
        stream = self.streams.get(key)
        if stream is not None:
            stream.stop()

    def stop_all(self, wait: float = 30.0) -> None:
        for stream in list(self.streams.values()):
            stream.stop()
            stream.thread.join(timeout=wait)


def status_line(stream: LiveStream) -> str:
    """What the page shows about a stream while it plays."""
    s = stream.stats
    if s.error:
        return f"**The stream stopped:** {s.error}"
    if s.first_picture_s is None:
        return "Starting: making the first window..."
    rss = "" if math.isnan(s.rss_mb) else f", memory {s.rss_mb:.0f} MB"
    state = ("stopped" if not stream.running else "stopping" if stream.stopped.is_set()
             else f"playing; generation waits for playback {stream.lead_s:.0f} s ahead" if stream.waiting else "playing")
    return (f"Live ({state}): {s.made_s:.1f} s made at {s.speed():.2f}x real time, {s.ahead_s():.1f} s ahead of "
            f"playback; first picture after {s.first_picture_s:.1f} s{rss}")
