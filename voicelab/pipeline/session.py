"""`ChainedSession`: a `voicelab.Session` whose transport is the chained pipeline (STT -> text model -> TTS).

    async with voicelab.connect(agent, url=server.url, architecture="chained") as session:
        await session.send_audio(caller_audio)      # the same interface, app events and recording
        async for event in session: ...

`url` is the same as for a Realtime session (`server.url`, or None for the OpenAI API): the HTTP APIs are at
its `/v1` and the transcription session at `/v1/realtime?intent=transcription`. Each stage's latency is
recorded as a `pipeline_stage` app event, which `voicelab.tables.turns` splits the latency by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from voicelab.config import SessionConfig
from voicelab.errors import ConfigError
from voicelab.events import AppEvent
from voicelab.pipeline.transport import ChainedModels, ChainedTransport
from voicelab.session import Session

OPENAI_HTTP_BASE = "https://api.openai.com/v1"
OPENAI_WS_BASE = "wss://api.openai.com/v1"


@dataclass(frozen=True)
class PipelineStage(AppEvent):
    """One stage of a chained turn, on the session clock: "transcription" (end of speech to transcript),
    "text_model" (request to the first text or call), "synthesis" (the first sentence to its first audio)."""

    type: ClassVar[str] = "pipeline_stage"
    stage: str
    started_ms: float
    ended_ms: float
    response_id: str | None = None
    item_id: str | None = None

    @property
    def duration_ms(self) -> float:
        return self.ended_ms - self.started_ms


def endpoints(url: str | None) -> tuple[str, str]:
    """(HTTP base `.../v1`, WebSocket base `.../v1`) from a Realtime URL (None: the OpenAI API)."""
    if url is None:
        return OPENAI_HTTP_BASE, OPENAI_WS_BASE
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.netloc:
        raise ConfigError(
            f"{url!r} is not a server URL; pass the Realtime URL (e.g. voicelab.serve().url) or None for the "
            "OpenAI API."
        )
    secure = parts.scheme in ("wss", "https")
    path = re.sub(r"/realtime/?$", "", parts.path.rstrip("/")) or "/v1"
    http = urlunsplit(("https" if secure else "http", parts.netloc, path, "", ""))
    ws = urlunsplit(("wss" if secure else "ws", parts.netloc, path, "", ""))
    return http, ws


class ChainedSession(Session):
    """A Session run as speech-to-text -> text model with tools -> text-to-speech (see the module doc)."""

    def __init__(self, *args: Any, models: ChainedModels | None = None, **kwargs: Any) -> None:
        if models is not None and not isinstance(models, ChainedModels):
            got = f"the class {models.__name__}" if isinstance(models, type) else type(models).__name__
            raise ConfigError(
                "models must be a voicelab.ChainedModels(transcribe=..., text=..., speech=...) or None, got "
                f"{got}"
            )
        if args and not isinstance(args[0], SessionConfig):
            raise ConfigError(
                f"ChainedSession takes a SessionConfig, got {type(args[0]).__name__}; use "
                "voicelab.connect(agent_or_config, architecture='chained')"
            )
        url = kwargs.get("url")
        self._http_base, self._ws_base = endpoints(url)
        self.models = models or ChainedModels()
        kwargs["url"] = self._ws_base + "/realtime"
        super().__init__(*args, **kwargs)
        # the Realtime URL the base class derived carries ?model=; the chained one asks for transcription
        self._stt_url = f"{self._ws_base}/realtime?{urlencode({'intent': 'transcription'})}"
        runtime = self._runtime
        if runtime is not None and getattr(getattr(runtime, "agent", None), "output_guardrails", None):
            runtime.checks_before_speech = True  # the pipeline checks each sentence before it is spoken

    @property
    def architecture(self) -> str:
        return "chained"

    def _meta(self) -> dict[str, Any]:
        meta = super()._meta()
        meta["architecture"] = "chained"
        meta["models"] = {
            "transcribe": self.models.transcribe,
            "text": self.models.text,
            "speech": self.models.speech,
        }
        return meta

    def _bearer(self) -> str:
        auth = next((v for k, v in self._headers.items() if k.lower() == "authorization"), "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else "sk-none"

    async def _open_transport(self) -> Any:
        from openai import AsyncOpenAI

        extra = {k: v for k, v in self._headers.items() if k.lower() != "authorization"}
        client = AsyncOpenAI(
            api_key=self._bearer(), base_url=self._http_base, default_headers=extra or None, max_retries=0
        )
        return await ChainedTransport.connect(
            client=client,
            transcription_url=self._stt_url,
            headers=self._headers,
            models=self.models,
            clock=self.now_ms,
            on_stage=self._on_stage,
            check=self._check if self._guarded() else None,
            open_timeout=self.open_timeout,
            secrets_=self._secrets,
        )

    def _guarded(self) -> bool:
        agent = getattr(self._runtime, "agent", None)
        return bool(getattr(agent, "output_guardrails", None))

    def _on_stage(self, stage: str, ids: dict[str, str], started_ms: float, ended_ms: float) -> None:
        self.emit(
            PipelineStage(
                stage, started_ms, ended_ms, response_id=ids.get("response_id"), item_id=ids.get("item_id")
            )
        )

    async def _check(self, item_id: str, response_id: str, text: str) -> bool:
        """The agent's output guardrails on the text about to be spoken; False when one tripped (the runtime
        then interrupts, cancels the rest of the answer and sends its follow-up)."""
        runtime = self._runtime
        check = getattr(runtime, "check_output", None)
        if check is None:
            return True
        return bool(await check(self, item_id, response_id, text))

    def __repr__(self) -> str:
        return super().__repr__().replace("Session(", "ChainedSession(", 1)


__all__ = ["ChainedSession", "PipelineStage", "endpoints"]
