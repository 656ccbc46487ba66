"""Helpers for the evaluation tests: a scripted chat-completions server on loopback, and emulators.

`FakeJudge` speaks the OpenAI chat-completions shape (`POST /v1/chat/completions`) from a real
uvicorn server in its own thread, like the emulator: replies come from rules matched against the
request's messages, and every request is kept for the tests to inspect.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.canary import CANARY_KEY
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, load_agent, running_emulator
from vf_mcp.evaluation.judge import JudgeSettings, OpenAIChatClient

FIXTURES = Path(__file__).parent / "fixtures"
XVD = FIXTURES / "voiceflow_cli"
EXAMPLES = Path(__file__).parent.parent / "examples" / "evals"
ISLA_KEY = "VF.DM.0000000000000000000000a1.emulatorIslaAgent"
JUDGE_KEY = "sk-judge-secret-do-not-leak-7f3a"

Reply = str | Callable[[str], str]


def verdict(passed: bool, score: float | None = None, reasoning: str = "scripted") -> str:
    return json.dumps(
        {
            "verdict": "pass" if passed else "fail",
            "score": score if score is not None else (1.0 if passed else 0.0),
            "reasoning": reasoning,
        }
    )


class FakeJudge:
    """Rules are (substring, reply): the first whose substring is in the request's text wins."""

    def __init__(
        self,
        rules: list[tuple[str, Reply]],
        *,
        rate_limit_first: int = 0,
        usage: tuple[int, int] | None = None,
    ) -> None:
        self.rules = rules
        self.rate_limit_first = rate_limit_first
        self.usage = usage  # (prompt_tokens, completion_tokens) of every answer; None: no `usage`
        self.fail_with: int | None = None  # a status every request is answered with
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    def texts(self) -> list[str]:
        return ["\n".join(m["content"] for m in r["messages"]) for r in self.requests]

    async def _chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        self.authorizations.append(request.headers.get("authorization"))
        if self.fail_with is not None:
            return JSONResponse({"error": {"message": "told to fail"}}, self.fail_with)
        if self.rate_limit_first > 0:
            self.rate_limit_first -= 1
            return JSONResponse(
                {"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "0"}
            )
        text = "\n".join(m["content"] for m in body["messages"])
        reply = next((r for key, r in self.rules if key in text), None)
        if reply is None:
            return JSONResponse({"error": {"message": f"no rule for: {text[-200:]}"}}, 500)
        content = reply(text) if callable(reply) else reply
        answer: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
        if self.usage is not None:
            prompt, completion = self.usage
            answer["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return JSONResponse(answer)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


@contextmanager
def running_judge(judge: FakeJudge) -> Iterator[str]:
    """Serve `judge` on 127.0.0.1; yields its base URL (`http://127.0.0.1:PORT/v1`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(judge.app, log_config=None, log_level="warning", lifespan="off")
    ready = threading.Event()
    server = _Server(config, ready)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="fake-judge", daemon=True
    )
    thread.start()
    try:
        assert ready.wait(10) and server.started, "the fake judge did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def judge_client(url: str) -> OpenAIChatClient:
    return OpenAIChatClient(
        JudgeSettings(url=url, model="fake-judge", api_key=SecretStr(JUDGE_KEY), timeout=10)
    )


@contextmanager
def isla_emulator() -> Iterator[Emulator]:
    """The agents voiceflow-cli's example files were written against, in one emulator."""
    agents = [load_agent(XVD / "isla_agent.yaml"), load_agent(XVD / "tester_agent.yaml")]
    with running_emulator(agents) as emulator:
        yield emulator


def isla_settings(emulator: Emulator) -> Settings:
    return Settings.validated({"api_key": ISLA_KEY, "runtime_url": emulator.url})


def closed_port_settings(like: Settings | None = None) -> Settings:
    """Settings (those of `like`, if given) whose runtime URL is a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    if like is not None:
        return like.model_copy(update={"runtime_url": url})
    return Settings.validated({"api_key": CANARY_KEY, "runtime_url": url})
