"""Transports: thin movers of Realtime text frames."""

from voicelab.transports.websocket import OPENAI_REALTIME_URL, WebSocketTransport, auth_headers, realtime_url

__all__ = ["OPENAI_REALTIME_URL", "WebSocketTransport", "auth_headers", "realtime_url"]
