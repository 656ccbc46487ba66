"""The MCP server: thin tools over `ConversationService`, each answering with a summary + model."""

from __future__ import annotations

import hashlib
import inspect
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from vf_mcp import __version__
from vf_mcp.agents import AgentDirectory, agents_from_settings
from vf_mcp.app_context import AppContext
from vf_mcp.config import ENV_TOOLS, Settings
from vf_mcp.conversation import (
    ENVIRONMENT_PATTERN,
    USER_ID_MAX_LENGTH,
    USER_ID_PATTERN,
    ConversationService,
    DeleteResult,
    SessionEventResult,
    StateResult,
    StreamRoutes,
    new_user_id,
)
from vf_mcp.errors import ConfigurationError, InvalidInputError, StoreError, VfMcpError
from vf_mcp.evaluation_tools import register_evaluation
from vf_mcp.handoff import HandoffResult, hand_off
from vf_mcp.oauth import oauth_parts
from vf_mcp.store import ConversationStore, PrefixedStore, open_store
from vf_mcp.summary import TurnResult, Verbosity, render_turn
from vf_mcp.voiceflow.client import VoiceflowClient
from vf_mcp.voiceflow.variables import is_runtime_variable

INSTRUCTIONS = """\
Drive a Voiceflow conversational agent as its user.

1. Start with interact(launch=true). Keep the returned user_id and pass it to every later call:
   it is the conversation handle.
2. Read each result's text: what the agent said ("Agent: ..."), the buttons it offers
   ("Choices: 1) ... 2) ..."), and the status line.
3. Answer buttons with interact(choice="<label>") (case-insensitive) or choice=<number>; answer
   free questions with interact(message="...").
4. Watch the status: awaiting_user = your turn; awaiting_action = the agent asked for a custom
   action: send interact(action={"type": "<one of the listed result types>"}); ended = the
   conversation is over (launch again to restart); handoff = the agent passed the conversation to a
   person or another system: stop and report; error = something failed: read the message.
Use get_state / update_variables to inspect or preset variables, delete_state to reset.
"""

AgentName = Annotated[
    str | None,
    Field(
        description="Which agent to talk to, when the server has several (see its instructions); "
        "default: the default agent",
        max_length=40,
    ),
]
UserId = Annotated[
    str,
    Field(
        description="Conversation handle returned by a previous interact call",
        min_length=1,
        max_length=USER_ID_MAX_LENGTH,
        pattern=USER_ID_PATTERN,
    ),
]
Environment = Annotated[
    str | None,
    Field(
        description="Agent environment: development (default), production, staging, an alias "
        "or a version id",
        max_length=64,
        pattern=ENVIRONMENT_PATTERN,
    ),
]


_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


def build_server(
    settings: Settings,
    *,
    client: VoiceflowClient | None = None,
    store: ConversationStore | None = None,
    heartbeat_seconds: float | None = None,
    agents: AgentDirectory | None = None,
) -> MCPServer[AppContext]:
    """The MCP server for the configured agents (`VF_MCP_AGENTS_FILE`, else one agent).

    A given `client` serves the default agent as is and is left open.
    """
    directory = agents or agents_from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        memory = store or open_store(
            settings.store_url.get_secret_value() if settings.store_url else None,
            ttl_seconds=settings.store_ttl,
        )
        owned: list[VoiceflowClient] = []
        services: dict[str, ConversationService] = {}
        stream_routes = StreamRoutes()
        projects = Counter(
            (a.settings.runtime_url, a.settings.project_id) for a in directory.agents.values()
        )
        for name, agent in directory.agents.items():
            # One agent keeps the plain keys; several get a prefix each in the shared store.
            view = memory if len(directory.agents) == 1 else PrefixedStore(memory, f"{name}/")
            if client is not None and name == directory.default:
                vf = client
            else:
                vf = VoiceflowClient(agent.settings, session_keys=view)
                owned.append(vf)
            # Agents on one project share its runtime state per user id: keep them apart there too.
            shared = projects[(agent.settings.runtime_url, agent.settings.project_id)] > 1
            services[name] = ConversationService(
                vf,
                view,
                agent.settings,
                id_prefix=f"{name}." if shared else "",
                stream_routes=stream_routes,
            )
            if heartbeat_seconds is not None:
                services[name].heartbeat_seconds = heartbeat_seconds
        judge = None
        if os.environ.get("VF_MCP_JUDGE_URL"):  # the judge's client is imported only when used
            from vf_mcp.evaluation import judge_from_env

            judge = judge_from_env()
        try:
            yield AppContext(
                services=services,
                default_agent=directory.default,
                judge=judge,
                ttl_seconds=settings.store_ttl,
            )
        finally:
            if judge is not None:
                await judge.aclose()
            for vf in owned:
                await vf.aclose()
            if store is None:
                await memory.aclose()

    token_verifier, auth = oauth_parts(settings)
    mcp: MCPServer[AppContext] = MCPServer(
        "vf-mcp",
        title="Voiceflow agent",
        version=__version__,
        instructions=_instructions(directory),
        lifespan=lifespan,
        log_level=settings.log_level,
        token_verifier=token_verifier,
        auth=auth,
    )

    def service_of(ctx: Context[AppContext], agent: str | None = None) -> ConversationService:
        try:
            return ctx.request_context.lifespan_context.service_for(agent)
        except InvalidInputError as exc:
            raise ToolError(exc.message) from None

    def namespace_of(ctx: Context[AppContext]) -> str | None:
        """Each HTTP token gets its own conversations; stdio has one caller and no namespace."""
        if settings.oauth:
            access = get_access_token()
            who = access.subject or access.client_id if access else None
            return namespace_for(f"oauth:{who}") if who else None
        if not settings.auth_tokens:
            return None
        headers = ctx.headers or {}
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        return caller_namespace(authorization)

    registered: list[str] = []

    def tool(annotations: ToolAnnotations, name: str | None = None) -> Callable[[_F], _F]:
        """Register a tool whose description is its docstring without the source indentation."""

        def register(fn: _F) -> _F:
            registered.append(name or fn.__name__)
            description = inspect.cleandoc(fn.__doc__ or "")
            return mcp.tool(name=name, description=description, annotations=annotations)(fn)

        return register

    @tool(
        ToolAnnotations(
            title="Talk to the Voiceflow agent",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        )
    )
    async def interact(
        ctx: Context[AppContext],
        user_id: Annotated[
            str | None,
            Field(
                description="Conversation handle from an earlier result; leave out to start a "
                "new conversation (a fresh id is returned)",
                min_length=1,
                max_length=USER_ID_MAX_LENGTH,
                pattern=USER_ID_PATTERN,
            ),
        ] = None,
        message: Annotated[
            str | None, Field(description="What the user types or says", max_length=10_000)
        ] = None,
        choice: Annotated[
            str | int | None,
            Field(
                description="A button offered by the previous turn: its label (case-insensitive) "
                "or its 1-based number"
            ),
        ] = None,
        launch: Annotated[
            bool, Field(description="Start (or restart) the conversation from the beginning")
        ] = False,
        action: Annotated[
            dict[str, Any] | None,
            Field(
                description="A raw Voiceflow action sent verbatim, e.g. "
                '{"type": "event", "payload": {"event": {"name": "checkout"}}}, '
                '{"type": "done"} to resume a custom action, {"type": "no-reply"}, intents, '
                "path-* button requests"
            ),
        ] = None,
        variables: Annotated[
            dict[str, Any] | None,
            Field(description="Variables to merge into the agent's state before this turn"),
        ] = None,
        environment: Environment = None,
        agent: AgentName = None,
        verbosity: Annotated[
            Verbosity,
            Field(
                description="minimal: messages, choices, status; standard: also custom actions, "
                "variable changes and unshown traces; debug: also the raw traces"
            ),
        ] = "standard",
    ) -> Annotated[CallToolResult, TurnResult]:
        """Send one user turn to the Voiceflow agent and get its answer.

        Give exactly one of `message`, `choice`, `launch=true` or `action`. The result says what
        the agent said, which buttons it offers, what changed, and the status: awaiting_user,
        awaiting_action (send the custom action's result as `action`), ended, handoff or error.
        """
        service = service_of(ctx, agent)
        # Chosen here, so even a failed first turn tells the caller which id to check.
        chosen = user_id is None
        user_id = user_id or new_user_id()
        progress = 0

        async def on_progress(text: str) -> None:
            nonlocal progress
            progress += 1
            await ctx.report_progress(progress, None, text)

        try:
            turn = await service.interact(
                user_id=user_id,
                message=message,
                choice=choice,
                launch=launch,
                action=action,
                variables=variables,
                environment=environment,
                verbosity=verbosity,
                on_progress=on_progress,
                namespace=namespace_of(ctx),
            )
        except InvalidInputError as exc:
            raise ToolError(exc.message) from None
        except VfMcpError as exc:
            failed = TurnResult(user_id=user_id, status="error", error=exc.message)
            which = f" (new user_id {user_id})" if chosen else ""
            return CallToolResult(
                content=[TextContent(type="text", text=f"Error{which}: {exc.message}")],
                structured_content=failed.model_dump(mode="json"),
                is_error=True,
            )
        await _record(
            ctx, agent, turn, namespace_of(ctx), message, choice, launch, action, variables
        )
        text = render_turn(
            turn, verbosity, show_user_id=chosen, max_chars=settings.summary_max_chars
        )
        return _result(text, turn)

    @tool(
        ToolAnnotations(
            title="Read the conversation state",
            read_only_hint=True,
            open_world_hint=True,
        )
    )
    async def get_state(
        ctx: Context[AppContext],
        user_id: UserId,
        environment: Environment = None,
        agent: AgentName = None,
    ) -> Annotated[CallToolResult, StateResult]:
        """Read a conversation's state: its flow stack, runtime storage and variables."""
        result = await _call(
            service_of(ctx, agent).get_state(
                user_id, environment=environment, namespace=namespace_of(ctx)
            )
        )
        return _result(_describe_state("State of", result), result)

    @tool(
        ToolAnnotations(
            title="Replace the whole conversation state",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=True,
        )
    )
    async def replace_state(
        ctx: Context[AppContext],
        user_id: UserId,
        state: Annotated[
            dict[str, Any],
            Field(description="The complete state object: stack, storage and variables"),
        ],
        environment: Environment = None,
        agent: AgentName = None,
    ) -> Annotated[CallToolResult, StateResult]:
        """Replace a conversation's WHOLE state (stack, storage, variables).

        `state` must hold both `stack` and `storage` (the runtime refuses a partial state, and
        so does this tool, before sending anything); anything left out is wiped. To change
        variables only, use update_variables. Start from get_state's result and change what you
        need.
        """
        result = await _call(
            service_of(ctx, agent).replace_state(
                user_id, state, environment=environment, namespace=namespace_of(ctx)
            )
        )
        return _result(_describe_state("Replaced the state of", result), result)

    @tool(
        ToolAnnotations(
            title="Reset the conversation",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=True,
        )
    )
    async def delete_state(
        ctx: Context[AppContext],
        user_id: UserId,
        environment: Environment = None,
        agent: AgentName = None,
    ) -> Annotated[CallToolResult, DeleteResult]:
        """Delete a conversation's state so the next turn starts over.

        On Voiceflow's open-source runtime this removes the whole record, variables included;
        Voiceflow's hosted docs say the user's variables are kept. Either way the server
        forgets the buttons and transcript it kept for this user.
        """
        result = await _call(
            service_of(ctx, agent).delete_state(
                user_id, environment=environment, namespace=namespace_of(ctx)
            )
        )
        ctx.request_context.lifespan_context.book(namespace_of(ctx), agent).forget(user_id)
        return _result(f"Deleted the conversation state of {user_id}.", result)

    @tool(
        ToolAnnotations(
            title="Merge variables into the conversation",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=True,
        )
    )
    async def update_variables(
        ctx: Context[AppContext],
        user_id: UserId,
        variables: Annotated[
            dict[str, Any],
            Field(description="Variables to set, by name; others are left as they are"),
        ],
        environment: Environment = None,
        agent: AgentName = None,
    ) -> Annotated[CallToolResult, StateResult]:
        """Merge variables into a conversation's state, e.g. the user's name before launching."""
        result = await _call(
            service_of(ctx, agent).update_variables(
                user_id, variables, environment=environment, namespace=namespace_of(ctx)
            )
        )
        names = ", ".join(sorted(variables))
        return _result(f"Set {names} for {user_id}.", result)

    @tool(
        ToolAnnotations(
            title="Emit a session event",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        )
    )
    async def emit_event(
        ctx: Context[AppContext],
        session_id: Annotated[
            str,
            Field(
                description="The live session's id (voice calls: the session_id variable)",
                min_length=1,
                max_length=USER_ID_MAX_LENGTH,
                pattern=USER_ID_PATTERN,
            ),
        ],
        event: Annotated[
            str, Field(description="Name of a custom event the agent listens for", max_length=200)
        ],
        payload: Annotated[
            dict[str, Any] | None,
            Field(description="Extra fields sent in the event action's payload"),
        ] = None,
        agent: AgentName = None,
    ) -> Annotated[CallToolResult, SessionEventResult]:
        """Send a custom event to a live session of the agent.

        The runtime applies it only to sessions with an open socket connection (web chat widget,
        voice calls); conversations driven with interact never see it: use
        interact(action={"type": "event", ...}) for those. Success does not prove the session
        exists.
        """
        result = await _call(
            service_of(ctx, agent).emit_event(
                session_id, event, payload, namespace=namespace_of(ctx)
            )
        )
        return _result(
            f"Event {event!r} sent to session {session_id} "
            f"(runtime answered {result.status_code}).",
            result,
        )

    if len(directory.agents) > 1:  # a handoff needs somewhere to go

        @tool(
            ToolAnnotations(
                title="Hand the conversation to another agent",
                read_only_hint=False,
                destructive_hint=False,
                idempotent_hint=False,
                open_world_hint=True,
            )
        )
        async def handoff(
            ctx: Context[AppContext],
            user_id: UserId,
            to_agent: Annotated[str, Field(description="The agent to take over", max_length=40)],
            from_agent: AgentName = None,
            variables: Annotated[
                list[str] | None,
                Field(description="Names of variables to carry over from the current agent"),
            ] = None,
            target_user_id: Annotated[
                str | None,
                Field(
                    description="user_id on the target agent (default: the same user_id)",
                    min_length=1,
                    max_length=USER_ID_MAX_LENGTH,
                    pattern=USER_ID_PATTERN,
                ),
            ] = None,
        ) -> Annotated[CallToolResult, HandoffResult]:
            """Move a conversation to another agent of this server.

            Carries the chosen variables and a compact transcript (the variable
            vf_handoff_transcript, at most 8 KB) into the target agent's state, launches it there,
            and returns its first turn. Continue with interact(agent=<to_agent>); take the
            conversation back when its status is ended or handoff.
            """
            context = ctx.request_context.lifespan_context
            namespace = namespace_of(ctx)
            try:
                source_name = context.agent_name(from_agent)
                target_name = context.agent_name(to_agent)
                result = await hand_off(
                    source=context.services[source_name],
                    target=context.services[target_name],
                    from_agent=source_name,
                    to_agent=target_name,
                    user_id=user_id,
                    transcript=context.book(namespace, source_name).get(user_id),
                    variables=variables or (),
                    target_user_id=target_user_id,
                    namespace=namespace,
                )
            except VfMcpError as exc:
                raise ToolError(exc.message) from None
            await _record(ctx, target_name, result.turn, namespace, None, None, True, None, None)
            carried = ", ".join(result.variables) or "no variables"
            head = (
                f"Handed {user_id} from {source_name} to {target_name} as {result.user_id} "
                f"({carried}; transcript {result.transcript_bytes} bytes)."
            )
            turn_text = render_turn(result.turn, max_chars=settings.summary_max_chars)
            return _result(f"{head}\n{turn_text}", result)

    register_evaluation(mcp, tool, namespace_of, settings.tests_dir)
    _restrict_tools(mcp, settings, frozenset(registered))
    return mcp


READ_ONLY_TOOLS = frozenset({"get_state", "transcript"})


async def _record(
    ctx: Context[AppContext],
    agent: str | None,
    turn: TurnResult,
    namespace: str | None,
    message: str | None,
    choice: str | int | None,
    launch: bool,
    action: dict[str, Any] | None,
    variables: dict[str, Any] | None,
) -> None:
    """Add the turn to the caller's transcript of this conversation."""
    from vf_mcp.transcripts.book import user_action

    context = ctx.request_context.lifespan_context
    try:
        service = context.service_for(agent)
        memory = await service.store.load(service.upstream_id(turn.user_id, namespace))
    except StoreError:
        memory = None  # the transcript just lacks this turn's variables
    book = context.book(namespace, agent)
    if launch:
        # A launch starts the conversation over, so it starts a new transcript too.
        book.forget(turn.user_id)
    book.record_turn(
        turn,
        user_action(
            message=message, choice=choice, launch=launch, action=action, variables=variables
        ),
        variables_after=memory.variables if memory else None,
    )


def _restrict_tools(
    mcp: MCPServer[AppContext], settings: Settings, available: frozenset[str]
) -> None:
    """Remove the tools a deployment does not want (VF_MCP_TOOLS, VF_MCP_READ_ONLY)."""
    keep = set(available)
    if settings.tools is not None:
        unknown = settings.tools - available
        if unknown:
            raise ConfigurationError(
                f"{ENV_TOOLS} names unknown tools ({', '.join(sorted(unknown))}); "
                f"choose from {', '.join(sorted(available))}"
            )
        keep &= settings.tools
    if settings.read_only:
        keep &= READ_ONLY_TOOLS
    for name in available - keep:
        mcp.remove_tool(name)


def _instructions(directory: AgentDirectory) -> str:
    if len(directory.agents) == 1:
        return INSTRUCTIONS
    return (
        f"{INSTRUCTIONS}\nThis server reaches several agents: {directory.describe()}. Every tool "
        f"takes `agent` (default: {directory.default}); a conversation belongs to one agent. "
        "Move a conversation to another agent with handoff.\n"
    )


def caller_namespace(authorization: str) -> str | None:
    """A stable, non-reversible namespace for the bearer token in an Authorization header."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    return namespace_for(token) if token else None


def namespace_for(identity: str) -> str:
    """A short, stable, non-reversible name for a caller's token or OAuth subject."""
    return "t" + hashlib.sha256(identity.encode()).hexdigest()[:12]


async def _call(operation: Awaitable[_T]) -> _T:
    """Await a service call, turning our errors into messages the model can act on."""
    try:
        return await operation
    except VfMcpError as exc:
        raise ToolError(exc.message) from None


def _result(text: str, model: BaseModel) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json", by_alias=True),
    )


def _describe_state(prefix: str, result: StateResult) -> str:
    if result.state is None:
        return f"{prefix} {result.user_id}: no state (the conversation has not started)."
    state = result.state
    top = state.stack[-1] if state.stack else None
    where = f"at node {top.node_id}" if top and top.node_id else "with no active flow"
    head = f"{prefix} {result.user_id}: {len(state.stack)} stack frame(s), {where}"
    # The agent's own variables by name; the runtime's built-ins and bookkeeping only counted.
    own = sorted(name for name in state.variables if not is_runtime_variable(name))
    runtime = len(state.variables) - len(own)
    kept = f" (and {runtime} the runtime keeps)" if runtime else ""
    if not own:
        return f"{head}; no variables{kept}."
    names = ", ".join(own[:20]) + ("" if len(own) <= 20 else f" and {len(own) - 20} more")
    return f"{head}; variables: {names}{kept}."
