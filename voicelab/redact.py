"""Keep secrets out of reprs, logs and recordings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_QUERY_KEYS = frozenset(
    {"api_key", "api-key", "key", "token", "access_token", "client_secret", "secret"}
)
SECRET_HEADERS = frozenset({"authorization", "api-key", "openai-api-key", "x-api-key", "cookie"})
_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|ek_[A-Za-z0-9_\-]{6,})")
MASK = "***"


def redact_url(url: str | None) -> str | None:
    """The URL with secret query values (api_key, token, ...) and any user:password masked."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable (e.g. "ws://[::1"): mask what looks secret in the text itself
        return redact_log_text(url)
    query = [(k, MASK if k.lower() in SECRET_QUERY_KEYS else v) for k, v in parse_qsl(parts.query, True)]
    netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*/:"), parts.fragment))


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Headers with credential values masked."""
    return {k: (MASK if k.lower() in SECRET_HEADERS else v) for k, v in (headers or {}).items()}


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask the given secret strings and anything shaped like an OpenAI key."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _KEY_PATTERN.sub(MASK, text)


_HEADER_LINE = re.compile(
    r"(?im)\b(" + "|".join(re.escape(h) for h in sorted(SECRET_HEADERS)) + r")(\s*[:=]\s*)[^\r\n]*"
)
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:" + "|".join(re.escape(k) for k in sorted(SECRET_QUERY_KEYS)) + r")=)[^&\s#'\"]*"
)


def redact_log_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """A log line with no secret in it, for lines whose secrets are not known in advance (a server's view of
    a handshake): credential header values (`Authorization: Bearer ...`), secret query values (`?api_key=`,
    `&token=`), anything shaped like an OpenAI key, and the given secrets."""
    text = _HEADER_LINE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return redact_text(text, secrets)


def mask_secret(secret: Any) -> str:
    """How a secret is shown: only whether it is set."""
    return "<set>" if secret else "<not set>"


__all__ = ["MASK", "mask_secret", "redact_headers", "redact_log_text", "redact_text", "redact_url"]
