"""Feature extractors for the distribution metrics, kept apart from the metrics themselves.

- ``bt_nets``: small Bouncing Tones video and audio nets (weights bundled) whose penultimate features give
  BT-FVD and BT-FAD;
- ``vggish`` (FAD), ``audioclip`` (MM-Diffusion's FAD) and ``i3d`` (FVD/KVD): the standard networks, with weights
  from a local file.
"""

from avdit.eval.features.extractor import FeatureError, FeatureExtractor, load_extractors

__all__ = ["FeatureError", "FeatureExtractor", "load_extractors"]
