"""What the embedded server writes to the log: no secrets, and one INFO line (no traceback, no warning) for a
client that went away or sent garbage before its WebSocket upgrade finished.

Independent of the HTTP/WebSocket stack: `protect_server_logs()` attaches `ServerLogFilter` to the loggers the
stack writes to (uvicorn's, websockets', voicelab's), and `server_logger()` is a protected logger to hand to a
stack that takes one.
"""

from __future__ import annotations

import logging

from voicelab.redact import redact_log_text

LOGGER_NAME = "voicelab.server.connections"
# the loggers the embedded server's HTTP/WebSocket stack writes to (uvicorn with the websockets sans-I/O
# protocol logs handshakes, headers included, to uvicorn.error)
STACK_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "voicelab.server", LOGGER_NAME)
# Messages about a client that went away or sent no valid request before or during the opening handshake (a
# port scan, a health check, a TLS hello on a plain port, a client that gave up): everyday events under load,
# not server errors, so one INFO line each
_CLIENT_FAULTS = (
    "opening handshake failed",
    "Invalid HTTP request received",
    "Invalid UTF-8 sequence received from client",
    "Unsupported upgrade request",
)


def _exception_line(exc_info: object) -> str:
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[1] is None:
        return ""
    exc: BaseException = exc_info[1]
    parts: list[str] = []
    while exc is not None and len(parts) < 4:  # the chain, outermost first: "InvalidMessage: ... <- EOFError"
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return " <- ".join(parts)


class ServerLogFilter(logging.Filter):
    """Redacts every record (message and arguments, formatted once) and turns a failed opening handshake
    into one INFO line naming the cause."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: keep it, redacted as written
            message = f"{record.msg} {record.args}"
        fault = next((f for f in _CLIENT_FAULTS if message.startswith(f)), None)
        if fault is not None and record.levelno >= logging.WARNING:
            cause = _exception_line(record.exc_info)
            message = f"{message.rstrip('.')} (the client went away or sent no valid request)" + (
                f": {cause}" if cause else ""
            )
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        elif record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
        if record.exc_text:
            record.exc_text = redact_log_text(record.exc_text)
            record.exc_info = None  # formatted (and redacted) already
        record.msg, record.args = redact_log_text(message), None
        return True


def protect_server_logs(names: tuple[str, ...] = STACK_LOGGERS) -> None:
    """Attach `ServerLogFilter` (once) to each named logger: every record logged on them is redacted."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ServerLogFilter) for f in logger.filters):
            logger.addFilter(ServerLogFilter())


def server_logger() -> logging.Logger:
    """The logger for the server's connections, with `ServerLogFilter` attached once."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(f, ServerLogFilter) for f in logger.filters):
        logger.addFilter(ServerLogFilter())
    return logger


__all__ = ["LOGGER_NAME", "STACK_LOGGERS", "ServerLogFilter", "protect_server_logs", "server_logger"]
