"""pysyncobj's network, carried on the p2p gRPC port.

Two halves, one per thread::

    raft thread                                  event loop
    ───────────                                  ──────────
    GrpcTransport.send(node, msg)
      wire.dumps(msg) ── call_soon_threadsafe ─▶ RaftLinks: per peer an outbound RaftStream call,
                                                   a bounded queue, reconnect with backoff
    GrpcTransport._drain()  ◀── inbox + pipe ─── link up/down; frames from inbound RaftStreams
      wire.loads(payload) -> onMessageReceived     (ClusterServicer -> RaftLinks.inbound)

Each direction of a peer pair is its own stream: a peer sends on the stream it opened and receives
on the streams others opened to it. pysyncobj considers a node "connected" while this peer's
outbound stream to it is up (the server answered the RaftHello handshake, so the secret was
accepted and the peer id matches). Messages go through the strict :mod:`wire` codec only; frames
from peers pysyncobj does not know, or that do not decode, are dropped. Lost messages are fine for
Raft: a full queue or a broken stream drops them and pysyncobj resends.

Addresses come from the cluster state (``set_address``) and from the metadata of inbound streams
(a peer restarted under a new URI announces it), the latter tried first.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from pysyncobj.node import Node
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.transport import Transport

from qcluster.consensus import wire
from qcluster.errors import TransientError
from qcluster.logging import get_logger
from qcluster.p2p.channels import PEER_ID_HEADER, PEER_URI_HEADER, ChannelPool
from qcluster.proto_gen.v1 import cluster_pb2 as pb

log = get_logger(__name__)

RAFT_STREAM_METHOD = "/qcluster.v1.Cluster/RaftStream"
HANDSHAKE_TIMEOUT = 2.0
MIN_BACKOFF = 0.05
MAX_BACKOFF = 1.0
QUEUE_LIMIT = 4096


@dataclass
class SendFailures:
    """Qdrant's ``message_send_failures`` entry for one peer."""

    count: int = 0
    latest_error: str | None = None
    latest_error_at: float | None = None


@dataclass
class _Link:
    peer_id: int
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    up: bool = False


class RaftLinks:
    """The loop half: outbound streams, inbound delivery, addresses, send-failure figures."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, pool: ChannelPool, self_id: int, self_uri: str
    ) -> None:
        self._loop = loop
        self._pool = pool
        self._self_id = self_id
        self.self_uri = self_uri
        self._known: dict[int, str] = {}  # from the cluster state
        self._learned: dict[int, str] = {}  # from inbound stream metadata (newest first)
        self._links: dict[int, _Link] = {}
        self._transport: GrpcTransport | None = None
        self._closed = False
        self._quiet_until = 0.0
        self.failures: dict[int, SendFailures] = {}

    # ----------------------------------------------------------------- loop-side API

    def set_address(self, peer_id: int, uri: str | None) -> None:
        """The cluster state's URI for a peer (None: forget it)."""
        if uri is None:
            self._known.pop(peer_id, None)
            self._learned.pop(peer_id, None)
        elif self._known.get(peer_id) != uri:
            self._known[peer_id] = uri
            self._wake(peer_id)

    def quiet(self, seconds: float) -> None:
        """Send no Raft message for ``seconds`` (inbound ones are still delivered): a leader that
        goes quiet is replaced by an election among the others, and follows it when it speaks
        again. This is how leadership is handed over; Raft's safety does not depend on it."""
        self._quiet_until = self._loop.time() + seconds

    def addresses(self) -> dict[int, str]:
        return {**self._known, **self._learned}

    def inbound(self, sender_id: int, sender_uri: str) -> Any:
        """Accept an inbound stream; returns the per-frame delivery function."""
        transport = self._transport
        if transport is None or self._closed:
            raise TransientError("this peer's Raft node is not running")
        if sender_uri and self._learned.get(sender_id) != sender_uri:
            self._learned[sender_id] = sender_uri
            link = self._links.get(sender_id)
            if link is not None and not link.up:
                link.wake.set()

        def deliver(payload: bytes) -> None:
            transport.post(("msg", sender_id, payload))

        return deliver

    async def close(self) -> None:
        self._closed = True
        links, self._links = list(self._links.values()), {}
        for link in links:
            if link.task is not None:
                link.task.cancel()
        for link in links:
            if link.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await link.task

    # ----------------------------------------------------------------- called from the raft thread

    def attach(self, transport: GrpcTransport) -> None:
        self._transport = transport

    def from_raft(self, func: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the node is shutting down
            self._loop.call_soon_threadsafe(func, *args)

    def _add(self, peer_id: int) -> None:
        if self._closed or peer_id in self._links or peer_id == self._self_id:
            return
        link = _Link(peer_id)
        link.task = self._loop.create_task(self._run(link), name=f"raft-link-{peer_id}")
        self._links[peer_id] = link

    def _drop(self, peer_id: int) -> None:
        link = self._links.pop(peer_id, None)
        if link is not None and link.task is not None:
            link.task.cancel()

    def _send(self, peer_id: int, payload: bytes) -> None:
        link = self._links.get(peer_id)
        if link is None or not link.up or self._loop.time() < self._quiet_until:
            return
        try:
            link.queue.put_nowait(payload)
        except asyncio.QueueFull:
            self._failed(peer_id, "send queue full; message dropped")

    # ----------------------------------------------------------------- link machinery

    def _wake(self, peer_id: int) -> None:
        link = self._links.get(peer_id)
        if link is not None:
            link.wake.set()

    def _failed(self, peer_id: int, error: str) -> None:
        entry = self.failures.setdefault(peer_id, SendFailures())
        entry.count += 1
        entry.latest_error = error
        entry.latest_error_at = time.time()

    def _candidates(self, peer_id: int) -> list[str]:
        out = []
        for uri in (self._learned.get(peer_id), self._known.get(peer_id)):
            if uri and uri not in out:
                out.append(uri)
        return out

    async def _run(self, link: _Link) -> None:
        """Connect, stream, and on any failure report "down", back off and reconnect; forever
        (until cancelled by ``_drop`` / ``close``)."""
        backoff, attempt = MIN_BACKOFF, 0
        while True:
            candidates = self._candidates(link.peer_id)
            if not candidates:
                link.wake.clear()
                await link.wake.wait()
                continue
            uri = candidates[attempt % len(candidates)]
            started = time.monotonic()
            link.wake.clear()
            try:
                await self._session(link, uri)
                error = "stream closed by the peer"
            except grpc.aio.AioRpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
            except (ConnectionError, TimeoutError, asyncio.InvalidStateError) as exc:
                # InvalidStateError: the call ended (peer gone) between two writes
                error = str(exc) or type(exc).__name__
            except Exception as exc:  # a bad address in the state, a gRPC surprise: keep the link alive
                log.exception("raft link failed", peer=link.peer_id, uri=uri)
                error = repr(exc)
            finally:
                if link.up:
                    link.up = False
                    if self._transport is not None:
                        self._transport.post(("down", link.peer_id, b""))
                while not link.queue.empty():
                    link.queue.get_nowait()
            self._failed(link.peer_id, error)
            log.debug("raft link down", peer=link.peer_id, uri=uri, error=error)
            attempt += 1
            backoff = MIN_BACKOFF if time.monotonic() - started > 2.0 else min(backoff * 2, MAX_BACKOFF)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.wake.wait(), backoff)

    async def _session(self, link: _Link, uri: str) -> None:
        channel = self._pool.channel(uri)
        method = channel.stream_stream(
            RAFT_STREAM_METHOD,
            request_serializer=pb.RaftFrame.SerializeToString,
            response_deserializer=pb.RaftHello.FromString,
        )
        metadata = self._pool.metadata((PEER_ID_HEADER, str(self._self_id)), (PEER_URI_HEADER, self.self_uri))
        call = method(metadata=metadata)
        reader: asyncio.Future[Any] | None = None
        getter: asyncio.Future[bytes] | None = None
        try:
            hello = await asyncio.wait_for(call.read(), HANDSHAKE_TIMEOUT)
            if hello is grpc.aio.EOF:
                raise ConnectionError("stream closed during the handshake")
            if hello.peer_id != link.peer_id:
                raise ConnectionError(f"{uri} is peer {hello.peer_id}, not peer {link.peer_id}")
            link.up = True
            if self._transport is not None:
                self._transport.post(("up", link.peer_id, b""))
            reader = asyncio.ensure_future(call.read())  # resolves only when the stream ends
            while True:
                if link.queue.empty():
                    getter = asyncio.ensure_future(link.queue.get())
                    done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                    if reader in done:
                        reader.result()
                        return
                    payload = getter.result()
                    getter = None
                else:
                    payload = link.queue.get_nowait()
                await call.write(pb.RaftFrame(payload=payload))
        finally:
            call.cancel()
            pending = [f for f in (reader, getter) if f is not None and not f.done()]
            for f in pending:
                f.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)


class _Notifier:
    """A self-pipe registered with pysyncobj's poller: wakes the raft thread from the loop."""

    def __init__(self, poller: Any, callback: Any) -> None:
        self._poller = poller
        self._callback = callback
        self._r, self._w = os.pipe()
        for fd in (self._r, self._w):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.pending = False
        poller.subscribe(self._r, self._on_readable, POLL_EVENT_TYPE.READ)

    def notify(self) -> None:
        if self.pending:
            return
        self.pending = True
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._w, b"!")

    def _on_readable(self, descr: int, event_mask: int) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._r, 4096):
                pass
        self.pending = False
        self._callback()

    def close(self) -> None:
        self._poller.unsubscribe(self._r)
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)


class GrpcTransport(Transport):  # type: ignore[misc]
    """The raft-thread half, handed to pysyncobj as its transport (see the module docstring).

    pysyncobj constructs it as ``transportClass(syncObj, selfNode, otherNodes)``; pass
    ``functools.partial(GrpcTransport, links=links)``.
    """

    def __init__(self, syncObj: Any, selfNode: Node, otherNodes: Any, *, links: RaftLinks) -> None:
        super().__init__(syncObj, selfNode, otherNodes)
        self._links = links
        self._nodes: dict[str, Node] = {}
        self._connected: set[str] = set()
        self._inbox: deque[tuple[str, int, bytes]] = deque()
        self._notifier = _Notifier(syncObj._poller, self._drain)
        links.attach(self)
        for node in otherNodes:
            self.addNode(node)

    # loop -> raft thread
    def post(self, item: tuple[str, int, bytes]) -> None:
        self._inbox.append(item)
        self._notifier.notify()

    def wake(self) -> None:
        """Make the raft thread run its next tick now (callable from the raft thread too)."""
        self._notifier.notify()

    @property
    def ready(self) -> bool:
        return True

    def connected_ids(self) -> tuple[int, ...]:
        return tuple(sorted(int(n) for n in self._connected))

    def addNode(self, node: Node) -> None:
        self._nodes[node.id] = node
        self._links.from_raft(self._links._add, int(node.id))

    def dropNode(self, node: Node) -> None:
        self._nodes.pop(node.id, None)
        self._connected.discard(node.id)
        self._links.from_raft(self._links._drop, int(node.id))

    def send(self, node: Node, message: Any) -> bool:
        if node.id not in self._connected:
            return False
        try:
            payload = wire.dumps(message)
        except wire.WireError:
            log.exception("raft message cannot be encoded; dropped", peer=node.id)
            return False
        self._links.from_raft(self._links._send, int(node.id), payload)
        return True

    def destroy(self) -> None:
        self._notifier.close()
        for node_id in list(self._nodes):
            self._links.from_raft(self._links._drop, int(node_id))
        self._nodes.clear()
        self._connected.clear()

    def _drain(self) -> None:
        while self._inbox:
            kind, peer_id, payload = self._inbox.popleft()
            node = self._nodes.get(str(peer_id))
            if node is None:
                continue  # not (or no longer) a member: pysyncobj would trip over it
            if kind == "up":
                if node.id not in self._connected:
                    self._connected.add(node.id)
                    self._onNodeConnected(node)
            elif kind == "down":
                if node.id in self._connected:
                    self._connected.discard(node.id)
                    self._onNodeDisconnected(node)
            else:
                self._deliver(node, payload)

    def _deliver(self, node: Node, payload: bytes) -> None:
        try:
            message = wire.loads(payload)
        except wire.WireError as exc:
            log.warning("undecodable raft frame dropped", peer=node.id, error=str(exc))
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            log.warning("malformed raft message dropped", peer=node.id)
            return
        try:
            self._onMessageReceived(node, message)
        except Exception:
            log.exception("raft message handling failed; dropped", peer=node.id, type=message.get("type"))
