"""Feature extractors for the distribution metrics, kept apart from the metrics themselves.

- ``bt_nets``: small Bouncing Tones video and audio nets (weights bundled) whose penultimate features give
  BT-FVD and BT-FAD;
- ``vggish`` (FAD), ``audioclip`` (MM-Diffusion's FAD), ``panns`` (FD-PANNs) and ``i3d`` (FVD/KVD): the standard
  networks, with weights from a local file;
- ``imagebind`` (AV-IB) and ``synchformer`` (DeSync): scores of a video and its audio together (``paired``).
"""

from avdit.eval.features.extractor import FeatureError, FeatureExtractor, load_extractors, load_paired
from avdit.eval.features.paired import PairedScorer

__all__ = ["FeatureError", "FeatureExtractor", "PairedScorer", "load_extractors", "load_paired"]
