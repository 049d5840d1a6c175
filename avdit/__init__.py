"""avdit: one audio-video diffusion transformer for every task, trained with a Mixture of Noise Levels.

Reference implementation of Kim et al., "A Versatile Diffusion Transformer with Mixture of Noise Levels for
Audiovisual Generation", NeurIPS 2024 (arXiv 2405.13762).
"""

__version__ = "0.1.0"
