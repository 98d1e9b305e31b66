"""The voicelab exception tree.

VoicelabError
 ├── AudioError (also ValueError)        bad audio input: empty, NaN, wrong dtype, corrupt file, ...
 ├── ConfigError (also ValueError)       a session/agent/tool definition that makes no sense
 │    ├── ArgumentError (also TypeError) a call with a misspelt keyword, a missing argument or too many
 │    └── UnknownNameError (also AttributeError) a misspelt public name, e.g. expect.sayz
 ├── ScriptError (also ValueError)       a bad embedded-server script file (names the line)
 ├── LocalProtocolError                  the caller asked for something the protocol forbids
 ├── RemoteProtocolError                 the peer sent something malformed or unexpected (peer's fault)
 └── SessionError                        the connection failed, closed or stopped answering

Every message names the problem and, where there is one, the fix.
"""

from __future__ import annotations


class VoicelabError(Exception):
    """Base class of every error voicelab raises on purpose."""


class AudioError(VoicelabError, ValueError):
    """Audio input that cannot be used as given."""


class ConfigError(VoicelabError, ValueError):
    """A session, agent or tool definition that is invalid."""


class ArgumentError(ConfigError, TypeError):
    """A call to the public API with an unknown (often misspelt) keyword, a missing argument or too many
    positional ones. Also a TypeError, which is what Python itself raises for such a call."""


class UnknownNameError(ConfigError, AttributeError):
    """A misspelt public name (`voicelab.Agnet`, `expect.sayz`); the message names the closest one. Also an
    AttributeError, so hasattr() and getattr() with a default behave as usual."""


class ScriptError(VoicelabError, ValueError):
    """An embedded-server script that cannot be loaded."""


class LocalProtocolError(VoicelabError):
    """The caller asked for something the Realtime protocol does not allow."""


class RemoteProtocolError(VoicelabError):
    """The peer sent something malformed or unexpected."""


class SessionError(VoicelabError):
    """The Realtime connection failed, was closed, or stopped answering."""


__all__ = [
    "ArgumentError",
    "AudioError",
    "ConfigError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ScriptError",
    "SessionError",
    "UnknownNameError",
    "VoicelabError",
]
