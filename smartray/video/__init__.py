"""Video decoding: probing, frame sampling and crash-isolated decoding with PyAV.

Ingesting videos into the lake is ingest's (`smartray.ingest.video`).
"""

from smartray.video.config import VideoSettings
from smartray.video.sampling import SamplingConfig

__all__ = ["SamplingConfig", "VideoSettings"]
