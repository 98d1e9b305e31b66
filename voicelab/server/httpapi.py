"""The embedded server's HTTP APIs (Starlette endpoints): speech to text, text to speech, Responses and Chat
Completions, with the real API's auth and error rules.

    POST /v1/audio/transcriptions   multipart: file (wav, flac, ogg, mp3...), model; json | text |
                                    verbose_json | srt | vtt; stream=true: transcript.text.* events
    POST /v1/audio/speech           JSON: model, input, voice; pcm | wav streamed as synthesized, mp3 | flac |
                                    opus whole; stream_format="sse": speech.audio.* events
    POST /v1/responses              answered by the brain (voicelab.server.textapi); stream=true: SSE
    POST /v1/chat/completions       answered by the brain; stream=true: SSE chunks then [DONE]

Every failure is `{"error": {message, type, param, code}}` with the real API's status; nothing raises out of
an endpoint.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from voicelab.audio.b64 import b64encode
from voicelab.server.brains import Brain
from voicelab.server.responding import INLINE_BRAINS
from voicelab.server.services import EngineServices
from voicelab.server.textapi import ApiError, TextApi
from voicelab.server.work import WorkerThreads

logger = logging.getLogger("voicelab.server")
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_AUDIO_BYTES = 25 * 1024 * 1024  # the real API's upload limit for audio files
MAX_SPEECH_CHARS = 4096
SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
AUDIO_FILE_FORMATS = ["flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"]
# text-to-speech voices that are not Realtime voices, mapped to an offline voice of a similar register
SPEECH_VOICES = {"fable": "ballad", "onyx": "ash", "nova": "coral"}
_SENTENCE = re.compile(r"[^.!?;:]+[.!?;:]*\s*|[.!?;:]+\s*")
Endpoint = Callable[[Request], Awaitable[Response]]


def api_error(status: int, message: str, param: str | None = None, code: str | None = None,
              kind: str = "invalid_request_error") -> JSONResponse:  # fmt: skip
    return JSONResponse(ApiError(status, message, param, code, kind).body(), status_code=status)


async def not_found(request: Request) -> Response:
    """Any other path: the real API's 404."""
    return api_error(404, f"Invalid URL ({request.method} {request.url.path})")


def sse(events: Iterable[dict[str, Any]], done: bool = False) -> Iterator[bytes]:
    """Server-sent events: `event: <type>` and `data: <json>` per event; `data: [DONE]` ends chat streams."""
    for event in events:
        name = event.get("type")
        head = f"event: {name}\n" if isinstance(name, str) and "." in name else ""
        yield f"{head}data: {json.dumps(event)}\n\n".encode()
    if done:
        yield b"data: [DONE]\n\n"


def sentences(text: str) -> list[str]:
    """Text split where speech may pause (. ! ? ; :), so that audio streams as each piece is synthesized."""
    return [s for s in (m.group(0) for m in _SENTENCE.finditer(text)) if s.strip()] or [text]


def _wav_header() -> bytes:
    """A streamed WAV header (24 kHz mono PCM16) with the sizes unknown, as the real API streams WAV."""
    return (
        b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 24000, 48000, 2, 16) + b"data" + struct.pack("<I", 0xFFFFFFFF)
    )  # fmt: skip


class HttpApi:
    """The HTTP endpoints over one brain (`brain()` gives it) and the engine's services."""

    def __init__(self, brain: Callable[[], Brain], token: str | None, services: EngineServices) -> None:
        self._brain = brain
        self._token = token
        self.services = services
        self.text = TextApi(brain)
        self._threads: WorkerThreads | None = None

    def close_work(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False)

    async def _answer(self, method: Callable[[Any], Any], body: Any) -> Any:
        """A text API call: a bundled brain answers inline; a user's brain (sync or `async def`) in a worker
        thread, so that it never blocks the server's event loop."""
        if type(self._brain()) in INLINE_BRAINS:
            return method(body)
        if self._threads is None:
            self._threads = WorkerThreads(8, "voicelab-http-brain")
        return await asyncio.get_running_loop().run_in_executor(self._threads, method, body)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/audio/transcriptions", self._guard(self.transcriptions), methods=["POST"]),
            Route("/v1/audio/speech", self._guard(self.speech), methods=["POST"]),
            Route("/v1/responses", self._guard(self.responses), methods=["POST"]),
            Route("/v1/chat/completions", self._guard(self.chat), methods=["POST"]),
        ]

    def _guard(self, endpoint: Endpoint) -> Endpoint:
        """Auth first; ApiError and any failure become the real API's error body, never a traceback."""

        async def guarded(request: Request) -> Response:
            if self._token is not None:
                auth = request.headers.get("authorization")
                if auth is None:
                    return api_error(
                        401,
                        "You didn't provide an API key. You need to provide your API key in an Authorization "
                        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    )
                if auth != f"Bearer {self._token}":
                    return api_error(
                        401,
                        "Incorrect API key provided. Use the token the embedded server was started with.",
                        code="invalid_api_key",
                    )
            try:
                return await endpoint(request)
            except ApiError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
            except Exception as exc:
                logger.debug("%s %s failed", request.method, request.url.path, exc_info=True)
                return api_error(
                    500,
                    f"The embedded server failed on this request ({type(exc).__name__}: {exc}).",
                    kind="server_error",
                )

        return guarded

    # --- bodies -----------------------------------------------------------------------------------------

    async def _body(self, request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"Maximum content size limit ({limit}) exceeded ({declared} bytes read).")
        data = bytearray()
        async for chunk in request.stream():
            data.extend(chunk)
            if len(data) > limit:
                raise ApiError(
                    413, f"Maximum content size limit ({limit}) exceeded ({len(data)} bytes read)."
                )
        return bytes(data)

    async def _json(self, request: Request) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise ApiError(
                400,
                f"Invalid Content-Type header ({kind or 'none'}), expected application/json.",
            )
        raw = await self._body(request, MAX_JSON_BYTES)
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
                "was not valid JSON.)",
            ) from None
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return body

    # --- Responses and Chat Completions ------------------------------------------------------------------

    async def responses(self, request: Request) -> Response:
        body = await self._json(request)
        if body.get("stream"):
            # errors surface before the stream starts
            events = await self._answer(lambda b: list(self.text.response_events(b)), body)
            return StreamingResponse(sse(events), media_type="text/event-stream")
        return JSONResponse(await self._answer(self.text.response, body))

    async def chat(self, request: Request) -> Response:
        body = await self._json(request)
        if body.get("stream"):
            chunks = await self._answer(lambda b: list(self.text.chat_chunks(b)), body)
            return StreamingResponse(sse(chunks, done=True), media_type="text/event-stream")
        return JSONResponse(await self._answer(self.text.chat, body))

    # --- speech to text ---------------------------------------------------------------------------------

    async def transcriptions(self, request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "multipart/form-data":
            raise ApiError(
                400,
                f"Invalid Content-Type header ({kind or 'none'}), expected multipart/form-data. (HINT: If "
                "you're using curl, you can pass -H 'Content-Type: multipart/form-data')",
            )
        request._body = await self._body(request, MAX_AUDIO_BYTES + 64 * 1024)  # read by form() below
        try:
            form = await request.form(max_files=1, max_fields=64, max_part_size=MAX_AUDIO_BYTES)
        except Exception as exc:
            raise ApiError(400, f"Could not parse the multipart form ({exc}).") from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(400, "Missing required parameter: 'file'.", "file", "missing_required_parameter")
        model = form.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
        fmt = str(form.get("response_format") or "json")
        allowed = (
            ("json", "text") if model.startswith("gpt-") else ("json", "text", "srt", "verbose_json", "vtt")
        )
        if fmt not in allowed:
            raise ApiError(
                400,
                f"response_format '{fmt}' is not compatible with model '{model}'. Use "
                f"{' or '.join(allowed)}.",
                "response_format",
                "unsupported_value",
            )
        data = await upload.read()
        pcm = _decode_audio(data)
        seconds = round(len(pcm) / 48000.0, 3)
        transcriber = await asyncio.to_thread(self.services.transcriber, list(self._brain().phrases))
        try:
            text = str(await asyncio.to_thread(transcriber, pcm))
        except Exception as exc:
            raise ApiError(
                500, f"The embedded server could not transcribe the audio ({type(exc).__name__}: {exc}).",
                type="server_error",
            ) from None  # fmt: skip
        usage: dict[str, Any] = {"type": "duration", "seconds": seconds}
        if model.startswith("gpt-"):  # the gpt-4o transcribe models bill tokens, whisper-1 seconds
            audio_tokens, text_out = int(np.ceil(seconds * 10)), len(text) // 4 + 1
            usage = {
                "type": "tokens", "input_tokens": audio_tokens, "output_tokens": text_out,
                "total_tokens": audio_tokens + text_out,
                "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
            }  # fmt: skip
        if str(form.get("stream") or "").lower() == "true":
            events = [{"type": "transcript.text.delta", "delta": w} for w in _words(text)]
            events.append({"type": "transcript.text.done", "text": text, "usage": usage})  # type: ignore[dict-item]
            return StreamingResponse(sse(events), media_type="text/event-stream")
        if fmt == "text":
            return PlainTextResponse(text + "\n")
        if fmt == "srt":
            return PlainTextResponse(f"1\n00:00:00,000 --> {_stamp(seconds, ',')}\n{text}\n\n")
        if fmt == "vtt":
            return PlainTextResponse(f"WEBVTT\n\n00:00:00.000 --> {_stamp(seconds, '.')}\n{text}\n\n")
        if fmt == "verbose_json":
            segment = {
                "id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text, "tokens": [],
                "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 1.0, "no_speech_prob": 0.0,
            }  # fmt: skip
            return JSONResponse(
                {
                    "task": "transcribe",
                    "language": "english",
                    "duration": seconds,
                    "text": text,
                    "segments": [segment],
                    "usage": usage,
                }
            )
        return JSONResponse({"text": text, "usage": usage})

    # --- text to speech ---------------------------------------------------------------------------------

    async def speech(self, request: Request) -> Response:
        body = await self._json(request)
        for name in ("model", "input", "voice"):
            if body.get(name) is None:
                raise ApiError(
                    400, f"Missing required parameter: '{name}'.", name, "missing_required_parameter"
                )
        unknown = [k for k in body if k not in ("model", "input", "voice", "instructions", "response_format",
                                                  "speed", "stream_format")]  # fmt: skip
        if unknown:
            raise ApiError(400, f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter")
        text = body["input"]
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Invalid 'input': expected a non-empty string.", "input", "invalid_value")
        if len(text) > MAX_SPEECH_CHARS:
            raise ApiError(
                400,
                f"Invalid 'input': string too long. Expected a string with maximum length "
                f"{MAX_SPEECH_CHARS}, but got a string with length {len(text)} instead.",
                "input",
                "string_above_max_length",
            )
        voice = body["voice"]
        if isinstance(voice, dict):
            voice = voice.get("id")
        from voicelab.speech.tts import VOICES

        offline = SPEECH_VOICES.get(str(voice), str(voice))
        if offline not in VOICES:
            choices = ", ".join(repr(v) for v in [*VOICES, *SPEECH_VOICES])
            raise ApiError(
                400, f"Invalid value: '{voice}'. Supported values are: {choices}.", "voice", "invalid_value"
            )
        speed = body.get("speed", 1.0)
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0.25 <= speed <= 4.0:
            raise ApiError(
                400,
                f"Invalid 'speed': {speed!r}. Expected a number from 0.25 to 4.0.",
                "speed",
                "invalid_value",
            )
        from voicelab.speech.tts import MAX_SPEED, MIN_SPEED

        speed = min(max(float(speed), MIN_SPEED), MAX_SPEED)  # the offline voices' range
        fmt = body.get("response_format") or "mp3"
        if fmt not in SPEECH_FORMATS:
            choices = ", ".join(repr(f) for f in SPEECH_FORMATS)
            raise ApiError(
                400,
                f"Invalid value: '{fmt}'. Supported values are: {choices}.",
                "response_format",
                "invalid_value",
            )
        stream_format = body.get("stream_format") or "audio"
        if stream_format not in ("audio", "sse"):
            raise ApiError(
                400, f"Invalid value: '{stream_format}'. Supported values are: 'audio' and 'sse'.",
                "stream_format", "invalid_value",
            )  # fmt: skip
        pieces = sentences(text)
        if stream_format == "sse":
            return StreamingResponse(self._speech_sse(pieces, offline, speed), media_type="text/event-stream")
        if fmt in ("pcm", "wav"):
            stream = self._speech_pcm(pieces, offline, speed, header=fmt == "wav")
            return StreamingResponse(stream, media_type="audio/pcm" if fmt == "pcm" else "audio/wav")
        if fmt == "aac":
            raise ApiError(
                400, "response_format 'aac' is not available offline; use pcm, wav, mp3, flac or opus.",
                "response_format", "unsupported_value",
            )  # fmt: skip
        pcm = b"".join([chunk async for chunk in self._speech_pcm(pieces, offline, speed, header=False)])
        return Response(_encode(pcm, fmt), media_type=_MEDIA[fmt])

    async def _synthesize(self, text: str, voice: str, speed: float) -> bytes:
        pcm, _ = await asyncio.to_thread(self.services.synthesize, text, voice, speed)
        return pcm

    async def _speech_pcm(
        self, pieces: list[str], voice: str, speed: float, header: bool
    ) -> AsyncIterator[bytes]:
        """PCM as each piece is synthesized; the next piece is synthesized while this one is sent."""
        if header:
            yield _wav_header()
        upcoming = asyncio.ensure_future(self._synthesize(pieces[0], voice, speed))
        for index in range(len(pieces)):
            current = upcoming
            if index + 1 < len(pieces):
                upcoming = asyncio.ensure_future(self._synthesize(pieces[index + 1], voice, speed))
            try:
                pcm = await current
            except BaseException:
                upcoming.cancel()
                raise
            for offset in range(0, len(pcm), 9600):  # 200 ms per chunk
                yield pcm[offset : offset + 9600]

    async def _speech_sse(self, pieces: list[str], voice: str, speed: float) -> AsyncIterator[bytes]:
        async for chunk in self._speech_pcm(pieces, voice, speed, header=False):
            event = {"type": "speech.audio.delta", "audio": b64encode(chunk)}
            yield f"event: speech.audio.delta\ndata: {json.dumps(event)}\n\n".encode()
        tokens = sum(len(p) for p in pieces) // 4 + 1
        usage = {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens}
        done = {"type": "speech.audio.done", "usage": usage}
        yield f"event: speech.audio.done\ndata: {json.dumps(done)}\n\n".encode()


_MEDIA = {"mp3": "audio/mpeg", "flac": "audio/flac", "opus": "audio/ogg"}


def _encode(pcm: bytes, fmt: str) -> bytes:
    import soundfile

    samples = np.frombuffer(pcm, dtype="<i2")
    out = io.BytesIO()
    if fmt == "mp3":
        soundfile.write(out, samples, 24000, format="MP3")
    elif fmt == "flac":
        soundfile.write(out, samples, 24000, format="FLAC")
    else:
        soundfile.write(out, samples, 24000, format="OGG", subtype="OPUS")
    return out.getvalue()


def _decode_audio(data: bytes) -> bytes:
    """An uploaded audio file -> PCM16 24 kHz mono; a file that is not audio is the real API's 400."""
    import soundfile

    from voicelab.audio.core import Audio

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception:
        raise ApiError(
            400, f"Invalid file format. Supported formats: {AUDIO_FILE_FORMATS}", "file", "invalid_value"
        ) from None
    if samples.shape[0] == 0:
        raise ApiError(400, "Audio file is too short. Minimum audio length is 0.1 seconds.", "file",
                       "audio_too_short")  # fmt: skip
    return Audio.from_array(samples.mean(axis=1), int(rate)).to_realtime().to_pcm16()


def _words(text: str) -> list[str]:
    from voicelab.server.textapi import words

    return words(text)


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


__all__ = ["HttpApi", "api_error", "not_found", "sentences"]
