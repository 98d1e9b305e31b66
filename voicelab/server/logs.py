"""What the embedded server writes to the log: no secrets, and one line (no traceback) for a client that
went away before its WebSocket upgrade finished.

Independent of the HTTP/WebSocket stack: `server_logger()` is the logger to hand to that stack, and
`ServerLogFilter` can be attached to any other logger whose records may carry a handshake.
"""

from __future__ import annotations

import logging

from voicelab.redact import redact_log_text

LOGGER_NAME = "voicelab.server.connections"
# websockets' message when a connection ends before or during the opening handshake (a port scan, a health
# check, a client that gave up): an everyday event under load, not a server error
_HANDSHAKE_FAILED = "opening handshake failed"


def _exception_line(exc_info: object) -> str:
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[1] is None:
        return ""
    exc: BaseException = exc_info[1]
    parts = []
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
        if message.startswith(_HANDSHAKE_FAILED) and record.levelno >= logging.WARNING:
            cause = _exception_line(record.exc_info)
            message = f"{_HANDSHAKE_FAILED} (the client went away or sent no valid request)" + (
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


def server_logger() -> logging.Logger:
    """The logger for the server's connections, with `ServerLogFilter` attached once."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(f, ServerLogFilter) for f in logger.filters):
        logger.addFilter(ServerLogFilter())
    return logger


__all__ = ["LOGGER_NAME", "ServerLogFilter", "server_logger"]
