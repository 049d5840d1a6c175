"""Media in and out through PyAV (FFmpeg bundled in its wheels): decode, resample, keep sync, write mp4."""

from avdit.media.errors import MediaError
from avdit.media.read import Clip, MediaInfo, probe, read_audio, read_clip, read_video
from avdit.media.write import Mp4Stream, write_mp4, write_wav

__all__ = ["Clip", "MediaError", "MediaInfo", "probe", "read_audio", "read_clip", "read_video",
           "write_mp4", "write_wav", "Mp4Stream"]
