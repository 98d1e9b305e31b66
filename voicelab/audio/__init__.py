"""Audio for voice agents: the `Audio` value, PCM16/float/G.711 conversions, resampling, WAV/FLAC IO,
VAD engines and the `server_vad` turn detector."""

from voicelab.audio.core import (
    REALTIME_RATE,
    Audio,
    float_to_int16,
    float_to_pcm16,
    int16_to_float,
    pcm16_duration_ms,
    pcm16_to_float,
)
from voicelab.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicelab.audio.io import read_audio, write_audio
from voicelab.audio.turns import (
    SpeechStarted,
    SpeechStopped,
    Turn,
    TurnAnalysis,
    TurnDetection,
    TurnDetector,
    detect_turns,
)
from voicelab.audio.vad import ENGINES, StreamingVad, VadTrack, frame_probabilities, get_engine

__all__ = [
    "ENGINES",
    "REALTIME_RATE",
    "Audio",
    "SpeechStarted",
    "SpeechStopped",
    "StreamingVad",
    "Turn",
    "TurnAnalysis",
    "TurnDetection",
    "TurnDetector",
    "VadTrack",
    "alaw_decode",
    "alaw_encode",
    "detect_turns",
    "float_to_int16",
    "float_to_pcm16",
    "frame_probabilities",
    "get_engine",
    "int16_to_float",
    "pcm16_duration_ms",
    "pcm16_to_float",
    "read_audio",
    "ulaw_decode",
    "ulaw_encode",
    "write_audio",
]
