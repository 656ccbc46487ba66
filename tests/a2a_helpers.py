"""Driving vf-mcp's A2A agent with the official a2a-sdk client, over real HTTP on loopback."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory, create_client
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    Task,
)
from a2a.utils.constants import PROTOCOL_VERSION_0_3
from google.protobuf import json_format, struct_pb2

from tests.threaded_server import ThreadedServer, serve_in_thread
from vf_mcp.config import Settings
from vf_mcp.http import build_fronts, http_app
from vf_mcp.voiceflow import VoiceflowClient

CARD_PATH = "/.well-known/agent-card.json"


def message(
    text: str | None = None,
    data: dict[str, Any] | None = None,
    *,
    context_id: str = "",
    task_id: str = "",
    message_id: str | None = None,
) -> Message:
    parts = [Part(text=text)] if text is not None else []
    if data is not None:
        parts.append(Part(data=json_format.ParseDict(data, struct_pb2.Value())))
    return Message(
        role=Role.ROLE_USER,
        message_id=message_id or str(uuid.uuid4()),
        parts=parts,
        context_id=context_id,
        task_id=task_id,
    )


def texts(task: Task) -> list[str]:
    return [part.text for part in task.status.message.parts if part.HasField("text")]


def data_of(task: Task) -> dict[str, Any]:
    """The reply's data parts, merged."""
    found: dict[str, Any] = {}
    for part in task.status.message.parts:
        if part.HasField("data"):
            found.update(json_format.MessageToDict(part.data))
    return found


def metadata_of(task: Task) -> dict[str, Any]:
    return json_format.MessageToDict(task.status.message.metadata)


@dataclass
class Caller:
    """One A2A client (one bearer token, or none); every response body it read is kept."""

    http: httpx.AsyncClient
    base: str
    streaming: bool
    bodies: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    """The JSON-RPC methods this caller sent, in order."""
    dialect: str = "1.0"
    """The A2A version the SDK's client speaks: "1.0", or "0.3" through its v0.3 transport."""
    _client: Client | None = None

    async def send(self, sent: Message) -> Task:
        """Send a message; the task as the last event left it."""
        events = await self.events(sent)
        task = Task()
        for event in events:
            task = _applied(task, event)
        return task

    async def client(self) -> Client:
        """The SDK's client, made once from the agent's card."""
        if self._client is None:
            config = ClientConfig(httpx_client=self.http, streaming=self.streaming)
            if self.dialect == PROTOCOL_VERSION_0_3:
                self._client = ClientFactory(config).create(await self._v03_card())
            else:
                self._client = await create_client(self.base, config)
        return self._client

    async def _v03_card(self) -> Any:
        """The card as a v0.3-only client reads it: the SDK picks v1.0 when the card offers it,
        so the v1.0 interfaces are left out and its v0.3 transport is what remains."""
        card = await A2ACardResolver(self.http, self.base).get_agent_card()
        kept = [i for i in card.supported_interfaces if i.protocol_version == PROTOCOL_VERSION_0_3]
        assert kept, "the card offers no v0.3 interface"
        del card.supported_interfaces[:]
        card.supported_interfaces.extend(kept)
        return card

    async def events(self, sent: Message) -> list[StreamResponse]:
        client = await self.client()
        events = [event async for event in client.send_message(SendMessageRequest(message=sent))]
        self.bodies.extend(json_format.MessageToJson(event) for event in events)
        return events

    async def get_task(self, task_id: str) -> Task:
        client = await self.client()
        return await client.get_task(GetTaskRequest(id=task_id))

    async def cancel(self, task_id: str) -> Task:
        client = await self.client()
        return await client.cancel_task(CancelTaskRequest(id=task_id))

    async def rpc(self, method: str, params: dict[str, Any], path: str = "/a2a/default") -> Any:
        """A raw JSON-RPC call: what any client, not only the SDK's, would get."""
        response = await self.http.post(
            self.base + path,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
        )
        return response.json()


def _applied(task: Task, event: StreamResponse) -> Task:
    if event.HasField("task"):
        return event.task
    if event.HasField("status_update"):
        task.status.CopyFrom(event.status_update.status)
        task.id, task.context_id = event.status_update.task_id, event.status_update.context_id
    elif event.HasField("artifact_update"):
        task.artifacts.append(event.artifact_update.artifact)
    return task


@contextmanager
def a2a_server(settings: Settings) -> Iterator[ThreadedServer]:
    """vf-mcp over streamable HTTP in a thread: MCP at /mcp and A2A beside it."""
    with serve_in_thread(http_app(build_fronts(settings), settings)) as running:
        yield running


@contextmanager
def a2a_server_with_client(settings: Settings) -> Iterator[tuple[ThreadedServer, VoiceflowClient]]:
    vf = VoiceflowClient(settings)
    with serve_in_thread(http_app(build_fronts(settings, client=vf), settings)) as running:
        try:
            yield running, vf
        finally:
            running.run(vf.aclose())


@asynccontextmanager
async def caller(
    base: str,
    *,
    token: str | None = None,
    streaming: bool = False,
    dialect: str = "1.0",
    read_timeout: float = 30.0,
) -> AsyncIterator[Caller]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    bodies: list[str] = []
    methods: list[str] = []

    async def note(request: httpx.Request) -> None:
        if request.method == "POST":
            methods.append(str(json.loads(request.content).get("method")))

    async def keep(response: httpx.Response) -> None:
        # A stream is kept event by event (`Caller.events`): reading it here would wait for its end.
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            await response.aread()
            bodies.append(response.text)

    async with httpx.AsyncClient(
        headers=headers, timeout=read_timeout, event_hooks={"request": [note], "response": [keep]}
    ) as http:
        yield Caller(
            http=http,
            base=base,
            streaming=streaming,
            bodies=bodies,
            methods=methods,
            dialect=dialect,
        )


@contextmanager
def introspection_server() -> Iterator[str]:
    """A loopback OAuth authorization server (RFC 7662 introspection): `good-oauth-token` is
    alice's with scope `vf`, `narrow-oauth-token` hers with only `other`; any other is inactive."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    scopes = {"good-oauth-token": "vf", "narrow-oauth-token": "other"}

    async def introspect(request: Request) -> JSONResponse:
        scope = scopes.get(str((await request.form()).get("token")))
        if scope is None:
            return JSONResponse({"active": False})
        return JSONResponse({"active": True, "client_id": "app", "sub": "alice", "scope": scope})

    routes = [Route("/introspect", introspect, methods=["POST"])]
    with serve_in_thread(Starlette(routes=routes)) as server:
        yield server.url


def with_oauth(settings: Settings, issuer: str) -> Settings:
    """`settings` guarded by the authorization server at `issuer` (scope `vf`), published at
    https://agents.example.com."""
    oauth = {
        "oauth_issuer": issuer,
        "oauth_introspection_url": f"{issuer}/introspect",
        "oauth_scopes": "vf",
        "public_url": "https://agents.example.com/mcp",
    }
    return Settings.validated({**settings.model_dump(), **oauth})
