"""The embedded server's HTTP APIs and transcription sessions, through the official openai client and raw
HTTP: bodies and streamed events validate against the openai types; bad input gets the real API's errors."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import numpy as np
import pytest
import soundfile
from openai import AsyncOpenAI, AuthenticationError, BadRequestError
from openai.types.audio import Transcription, TranscriptionStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import Field, TypeAdapter
from websockets.asyncio.client import connect

import voicelab
from voicelab.server.httpapi import sentences
from voicelab.speech import GrammarTranscriber
from voicelab.speech.tts import synthesize

PHRASE = "Hi, I would like to return an order."
ANSWER = "I can help with that. What is your order number?"
LOOKUP = [{"type": "function", "name": "lookup_order", "parameters": {"type": "object", "properties": {}}}]
CHAT_LOOKUP = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with voicelab.serve("returns_desk", pace="fast", token="sk-local") as srv:
        yield srv


def client(server: Any) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.http_base_url, websocket_base_url=server.base_url, api_key="sk-local")


def wav_of(text: str, silence_ms: int = 0) -> bytes:
    audio = synthesize(text)
    samples = np.concatenate([audio.samples, np.zeros(24 * silence_ms, dtype=np.float32)])
    out = io.BytesIO()
    soundfile.write(out, samples, 24000, format="WAV", subtype="PCM_16")
    return out.getvalue()


def test_server_gives_the_http_base_url(server: Any) -> None:
    assert server.http_base_url == f"http://127.0.0.1:{server.port}/v1"
    assert server.base_url == f"ws://127.0.0.1:{server.port}/v1"


async def test_transcriptions_json_text_and_stream(server: Any) -> None:
    openai = client(server)
    result = await openai.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("a.wav", wav_of(PHRASE))
    )
    assert isinstance(result, Transcription) and result.text == PHRASE
    text = await openai.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("a.wav", wav_of(PHRASE)), response_format="text"
    )
    assert text.strip() == PHRASE
    stream = await openai.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("a.wav", wav_of(PHRASE)), stream=True
    )
    events = [event async for event in stream]
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[TranscriptionStreamEvent, Field(discriminator="type")])
    for event in events:
        adapter.validate_python(event.model_dump(exclude_unset=True))  # as sent
    assert events[-1].type == "transcript.text.done" and events[-1].text == PHRASE
    assert "".join(e.delta for e in events if e.type == "transcript.text.delta") == PHRASE


async def test_speech_streams_pcm_that_transcribes_back(server: Any) -> None:
    openai = client(server)
    chunks: list[bytes] = []
    async with openai.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="coral", input=ANSWER, response_format="pcm"
    ) as response:
        async for chunk in response.iter_bytes(chunk_size=4096):
            chunks.append(chunk)
    pcm = b"".join(chunks)
    assert len(chunks) > 1 and len(pcm) > 48000  # streamed in pieces, more than a second of audio
    heard = GrammarTranscriber([ANSWER, PHRASE]).transcribe(voicelab.Audio.from_pcm16(pcm, 24000))
    assert heard == ANSWER
    wav = await openai.audio.speech.create(
        model="tts-1", voice="onyx", input="Goodbye.", response_format="wav"
    )
    assert wav.content[:4] == b"RIFF"
    flac = await openai.audio.speech.create(
        model="tts-1", voice="alloy", input="Goodbye.", response_format="flac"
    )
    samples, rate = soundfile.read(io.BytesIO(flac.content))
    assert rate == 24000 and len(samples) > 2400


def test_speech_sentences_split_where_speech_pauses() -> None:
    assert sentences("Done. Is there anything else?") == ["Done. ", "Is there anything else?"]
    assert sentences("no punctuation") == ["no punctuation"]


async def test_responses_stream_and_function_call_round_trip(server: Any) -> None:
    openai = client(server)
    stream = await openai.responses.create(model="gpt-4.1", input=PHRASE, stream=True)
    events = [event async for event in stream]
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[ResponseStreamEvent, Field(discriminator="type")])
    for event in events:
        adapter.validate_python(event.model_dump(exclude_unset=True))  # as sent
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == ANSWER
    assert events[-1].response.output_text == ANSWER

    first = await openai.responses.create(
        model="gpt-4.1", input="The order number is four five six seven.", tools=LOOKUP
    )
    assert isinstance(first, Response)
    call = first.output[0]
    assert call.type == "function_call" and call.name == "lookup_order"
    assert json.loads(call.arguments) == {"order_number": "four five six seven"}
    second = await openai.responses.create(
        model="gpt-4.1",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "It was delivered."}],
        tools=LOOKUP,
    )
    assert second.output_text == (
        "I found order four five six seven. It was delivered. Shall I send you a return label?"
    )


async def test_chat_completions_plain_streamed_and_tools(server: Any) -> None:
    openai = client(server)
    done = await openai.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "system", "content": "x"}, {"role": "user", "content": PHRASE}]
    )
    assert isinstance(done, ChatCompletion) and done.choices[0].message.content == ANSWER
    stream = await openai.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": PHRASE}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = [chunk async for chunk in stream]
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    user = {"role": "user", "content": "The order number is four five six seven."}
    called = await openai.chat.completions.create(model="gpt-4.1", messages=[user], tools=CHAT_LOOKUP)
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    tool_call = choice.message.tool_calls[0]
    answered = await openai.chat.completions.create(
        model="gpt-4.1",
        tools=CHAT_LOOKUP,
        messages=[
            user,
            {"role": "assistant", "content": None, "tool_calls": [tool_call.model_dump()]},
            {"role": "tool", "tool_call_id": tool_call.id, "content": "It was delivered."},
        ],
    )
    assert answered.choices[0].message.content == (
        "I found order four five six seven. It was delivered. Shall I send you a return label?"
    )


async def test_bad_input_gets_the_real_api_errors(server: Any) -> None:
    openai = client(server)
    with pytest.raises(BadRequestError) as info:
        await openai.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.txt", b"not audio"))
    assert info.value.status_code == 400 and info.value.body["param"] == "file"  # type: ignore[index]
    with pytest.raises(BadRequestError) as info:
        await openai.responses.create(model="gpt-4.1", input="hi", extra_body={"bogus": 1})
    assert info.value.code == "unknown_parameter"
    with pytest.raises(BadRequestError) as info:
        await openai.chat.completions.create(model="gpt-4.1", messages=[])
    assert info.value.status_code == 400
    with pytest.raises(BadRequestError) as info:
        await openai.audio.speech.create(model="tts-1", voice="nobody", input="hi")
    assert info.value.param == "voice"
    with pytest.raises(BadRequestError) as info:
        await openai.responses.create(model="gpt-4.1", input="hi", previous_response_id="resp_missing")
    assert info.value.code == "previous_response_not_found"
    bad_key = AsyncOpenAI(base_url=server.http_base_url, api_key="sk-wrong")
    with pytest.raises(AuthenticationError) as auth:
        await bad_key.responses.create(model="gpt-4.1", input="hi")
    assert auth.value.code == "invalid_api_key" and "sk-wrong" not in str(auth.value)

    base = server.http_base_url
    headers = {"Authorization": "Bearer sk-local"}
    async with httpx.AsyncClient(headers=headers) as http:
        cases = [
            (
                await http.post(
                    f"{base}/responses", content=b"{not json", headers={"content-type": "application/json"}
                ),
                400,
            ),
            (await http.post(f"{base}/responses", data={"model": "x"}), 400),  # form, not JSON
            (
                await http.post(f"{base}/audio/transcriptions", json={"model": "x"}),
                400,
            ),  # JSON, not multipart
            (await http.post(f"{base}/audio/transcriptions", files={"file": ("a.wav", wav_of("Hi"))}), 400),
            (await http.post(f"{base}/audio/speech", json={"model": "tts-1", "voice": "alloy"}), 400),
            (
                await http.post(
                    f"{base}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
                ),
                400,
            ),
            (
                await http.post(
                    f"{base}/audio/transcriptions",
                    files={"file": ("a.wav", bytes(26 * 1024 * 1024))},
                    data={"model": "whisper-1"},
                ),
                413,
            ),
            (await http.get(f"{base}/nothing-here"), 404),
            (await http.get(f"{base}/chat/completions"), 404),  # "Invalid URL (GET ...)", as the real API
        ]
    for response, status in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        assert "Traceback" not in response.text


async def test_transcription_session_transcribes_turns_without_answering(server: Any) -> None:
    headers = {"Authorization": "Bearer sk-local"}
    async with connect(server.url + "?intent=transcription", additional_headers=headers) as ws:
        created = json.loads(await ws.recv())
        assert created["type"] == "session.created" and created["session"]["type"] == "transcription"
        update = {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "gpt-4o-transcribe"},
                        "turn_detection": {"type": "semantic_vad"},
                    }
                },
            },
        }
        await ws.send(json.dumps(update))
        assert json.loads(await ws.recv())["type"] == "session.updated"
        audio = voicelab.Audio.from_array(synthesize(PHRASE).samples, 24000)
        silence = np.zeros(24000, dtype=np.float32)
        for chunk in voicelab.Audio.from_array(np.concatenate([audio.samples, silence]), 24000).chunks_b64(
            100
        ):
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] != "conversation.item.input_audio_transcription.completed":
            seen.append(json.loads(await ws.recv()))
        from server_helpers import validate

        validate(seen)
        kinds = [e["type"] for e in seen]
        assert "input_audio_buffer.speech_stopped" in kinds and "input_audio_buffer.committed" in kinds
        assert seen[-1]["transcript"] == PHRASE
        await ws.send(json.dumps({"type": "response.create"}))
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and "transcription session" in error["error"]["message"]
