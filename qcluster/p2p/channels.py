"""One gRPC channel per peer URI, shared by every internal client, with the auth metadata.

Channels are created lazily on the running loop and reused; a channel reconnects by itself (with a
short backoff, so a restarted peer is reachable again within a second). Every call made through the
pool must pass :meth:`ChannelPool.metadata` so the peer's auth interceptor lets it through.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import grpc
import grpc.aio

from qcluster.errors import BadInputError
from qcluster.p2p.tls import P2pTls

SECRET_HEADER = "x-qcluster-secret"
PEER_ID_HEADER = "x-qcluster-peer-id"
PEER_URI_HEADER = "x-qcluster-peer-uri"

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)


def parse_uri(uri: str, field: str = "uri") -> tuple[str, int]:
    """``http://host:port`` (scheme optional, IPv6 in brackets) -> (host, port)."""
    text = uri.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https", "grpc") or not parts.hostname or port is None:
        raise BadInputError(f"{field}: expected a URI like http://host:6335, got {uri!r}", field)
    return parts.hostname, port


def make_uri(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def grpc_target(uri: str) -> str:
    host, port = parse_uri(uri)
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


class ChannelPool:
    def __init__(self, secret: str | None, tls: P2pTls | None = None) -> None:
        self._secret = secret
        self._credentials = tls.channel_credentials() if tls is not None else None
        self._channels: dict[str, grpc.aio.Channel] = {}

    def metadata(self, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        auth = ((SECRET_HEADER, self._secret),) if self._secret is not None else ()
        return auth + extra

    def channel(self, uri: str) -> grpc.aio.Channel:
        target = grpc_target(uri)
        channel = self._channels.get(target)
        if channel is None:
            if self._credentials is not None:
                channel = grpc.aio.secure_channel(target, self._credentials, options=CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
            self._channels[target] = channel
        return channel

    async def drop(self, uri: str) -> None:
        channel = self._channels.pop(grpc_target(uri), None)
        if channel is not None:
            await channel.close()

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()
