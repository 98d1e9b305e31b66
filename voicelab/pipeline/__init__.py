"""The chained architecture: the same Agent run as speech-to-text -> text model -> text-to-speech.

    session = voicelab.connect(agent, url=server.url, architecture="chained")

See `voicelab.pipeline.session` (the Session) and `voicelab.pipeline.transport` (the pipeline).
"""

from __future__ import annotations

from voicelab.pipeline.session import ChainedSession, PipelineStage, endpoints
from voicelab.pipeline.transport import ChainedModels, ChainedTransport, split_sentences

__all__ = [
    "ChainedModels",
    "ChainedSession",
    "ChainedTransport",
    "PipelineStage",
    "endpoints",
    "split_sentences",
]
