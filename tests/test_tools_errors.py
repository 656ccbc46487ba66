"""The one mapping from vf-mcp's errors to MCP results: complete, and what each kind becomes."""

from __future__ import annotations

import pytest
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from vf_mcp.error_kinds import ERROR_KINDS, kind_of
from vf_mcp.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseError,
    ResponseTimeoutError,
    RouteNotFoundError,
    ServerError,
    StreamInterruptedError,
    TransportError,
    VfMcpError,
    error_classes,
)
from vf_mcp.tools.errors import ERROR_META_KEY, error_result, resource_error

# The status each API error class is raised for (`vf_mcp.http_errors.STATUS_ERRORS`).
STATUS = {
    BadRequestError: 400,
    AuthenticationError: 401,
    NotFoundError: 404,
    RouteNotFoundError: 404,
    RateLimitError: 429,
    ServerError: 503,
}


def instance(cls: type[VfMcpError]) -> VfMcpError:
    if issubclass(cls, APIError):
        status = STATUS.get(cls, 500)
        return cls("it failed", status_code=status, upstream_message="", method="GET", path="/")
    return cls("it failed")


def test_every_error_class_of_the_hierarchy_is_mapped() -> None:
    classes = error_classes()
    assert len(classes) >= 19
    assert set(classes) == set(ERROR_KINDS), "map the new error class in vf_mcp/tools/errors.py"


def test_judge_and_script_errors_are_in_the_one_hierarchy() -> None:
    from vf_mcp.errors import JudgeError, ScriptError, UpstreamError

    assert issubclass(JudgeError, UpstreamError) and issubclass(ScriptError, VfMcpError)


@pytest.mark.parametrize("cls", error_classes(), ids=lambda c: c.__name__)
def test_each_error_reaches_the_client_as_a_readable_result(cls: type[VfMcpError]) -> None:
    error = instance(cls)
    result = error_result(error)
    assert result.is_error
    assert [block.text for block in result.content if block.type == "text"] == ["it failed"]
    # No structured content: clients check it against the tool's output schema, errors too.
    assert result.structured_content is None
    assert result.meta == {
        ERROR_META_KEY: {"kind": ERROR_KINDS[cls], "message": "it failed", "may_have_run": RAN[cls]}
    }
    raised = resource_error(error)
    expected = ResourceNotFoundError if kind_of(error) == "not_found" else ResourceError
    assert type(raised) is expected and "it failed" in str(raised)


# Whether a failed turn may have run, class by class: what a driver needs to repeat one safely.
RAN: dict[type[VfMcpError], bool] = dict.fromkeys(error_classes(), False) | {
    APIError: True,  # a 500
    ServerError: True,
    TransportError: True,
    ResponseTimeoutError: True,
    ResponseError: True,
    StreamInterruptedError: True,
}


def test_an_unmapped_subclass_takes_its_nearest_mapped_ancestor() -> None:
    class Stranger(APIError):
        pass

    stranger = Stranger("x", status_code=418, upstream_message="", method="GET", path="/")
    assert kind_of(stranger) == "upstream"
