"""The AVDiT network and its configuration presets."""

from avdit.model.transformer import AVDiT, ShapeError
from avdit.model.config import PRESETS, AVDiTConfig, ConfigError, get_preset

__all__ = ["AVDiT", "AVDiTConfig", "ConfigError", "PRESETS", "ShapeError", "get_preset"]
