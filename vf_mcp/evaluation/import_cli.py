"""`vf-mcp eval import`: Voiceflow transcripts (the Analytics API) written as suites, one per
conversation, with proposed checks for a person to review.

Exit status: 0 when suites were written; 2 on bad input (arguments, configuration, an unknown
project or transcript, a key without analytics access, an empty search, a log it cannot read,
suites already in --out without --force), with one line and nothing written; 1 when the Analytics
API failed otherwise (unreachable, 5xx), or writing stopped part-way into an existing --out.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import yaml
from anyio.abc import TaskGroup

from vf_mcp.arguments import OneLineParser
from vf_mcp.config import ENV_PROJECT_ID, Settings
from vf_mcp.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    VfMcpError,
)
from vf_mcp.evaluation.importing import Strictness, suite_document, transcript_suite
from vf_mcp.evaluation.script import Suite
from vf_mcp.evaluation.trials import counted
from vf_mcp.voiceflow.analytics import AnalyticsClient
from vf_mcp.voiceflow.analytics_models import EvaluationDefinition, SearchFilters, Transcript

USER_DATA_NOTICE = (
    "the suites hold users' words (redacted by Voiceflow unless --unredacted): keep them like "
    "user data, out of public repositories"
)
_BAD_INPUT = (ConfigurationError, InvalidInputError, AuthenticationError, NotFoundError,
              BadRequestError)  # fmt: skip
_FETCH_AT_ONCE = 4
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="vf-mcp eval import",
        description="Write Voiceflow transcripts (Analytics API) as suites, one per conversation.",
    )
    parser.add_argument("--project", help=f"the agent's project ID (default: ${ENV_PROJECT_ID})")
    parser.add_argument("--since", type=_when, metavar="ISO", help="created at or after")
    parser.add_argument(
        "--until", type=_until, metavar="ISO", help="created at or before (a date: that whole day)"
    )
    parser.add_argument(
        "--environment",
        metavar="ID",
        help="only this environment, by ID (a transcript's environmentID), not an alias",
    )
    parser.add_argument("--session", metavar="ID", help="only this session (the user id)")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N conversations, newest")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write")
    parser.add_argument(
        "--equals",
        action="store_true",
        help="propose `equals` of the agent's whole text instead of `contains` of its key sentence",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace suites --out already holds for the same conversations (reviewed edits lost)",
    )
    parser.add_argument(
        "--unredacted",
        action="store_true",
        help="fetch the logs without Voiceflow's PII redaction (when still available)",
    )
    return parser


def parse_when(value: str) -> datetime:
    """An ISO date or date-time; one without a zone is UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"{value!r} is not an ISO date or date-time, e.g. 2026-08-01 or 2026-08-01T12:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_until(value: str) -> datetime:
    """Like `parse_when`, but a bare date means the end of that day: `--until 2026-08-31`
    includes the 31st."""
    parsed = parse_when(value)
    if _DATE_ONLY.match(value.strip()):
        return parsed + timedelta(days=1) - timedelta(milliseconds=1)
    return parsed


def _when(value: str) -> datetime:
    try:
        return parse_when(value)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _until(value: str) -> datetime:
    try:
        return parse_until(value)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


@dataclass(frozen=True)
class ImportRequest:
    project_id: str
    filters: SearchFilters
    limit: int | None = None
    unredacted: bool = False
    strictness: Strictness = "contains"


@dataclass(frozen=True)
class ImportResult:
    suites: list[Suite]
    skipped: int
    """Conversations with nothing to replay (the user never acted besides opening it)."""


async def import_suites(analytics: AnalyticsClient, request: ImportRequest) -> ImportResult:
    """Search, fetch every match with its logs, and build the suites: all in memory, so a
    problem with any conversation leaves nothing half-written. An empty search is bad input."""
    found = await analytics.search(request.project_id, request.filters, limit=request.limit)
    if not found:
        raise InvalidInputError(
            f"no transcripts of project {request.project_id} match this search "
            f"({_described(request.filters)}); widen --since/--until, or check --environment "
            f"and --session{_alias_hint(request.filters.environment_id)}"
        )
    definitions: dict[str, EvaluationDefinition] = {}
    if any(t.evaluations for t in found):
        definitions = {e.id: e for e in await analytics.evaluations(request.project_id)}
    transcripts = await _fetch_all(analytics, [t.id for t in found], request.unredacted)
    built = [
        transcript_suite(t, definitions=definitions, strictness=request.strictness)
        for t in transcripts
    ]
    suites = [s for s in built if s is not None]
    return ImportResult(suites=suites, skipped=len(built) - len(suites))


async def _fetch_all(
    analytics: AnalyticsClient, transcript_ids: list[str], unredacted: bool
) -> list[Transcript]:
    """Every transcript with its logs, a few at a time; the first that fails stops the rest and
    is raised as itself (a task group would wrap it in an ExceptionGroup no caller expects)."""
    transcripts: list[Transcript | None] = [None] * len(transcript_ids)
    failures: list[VfMcpError] = []
    limiter = anyio.CapacityLimiter(_FETCH_AT_ONCE)

    async def fetch(index: int, transcript_id: str, group: TaskGroup) -> None:
        async with limiter:
            try:
                transcripts[index] = await analytics.get_transcript(
                    transcript_id, unredacted=unredacted
                )
            except VfMcpError as exc:
                failures.append(exc)
                group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        for index, transcript_id in enumerate(transcript_ids):
            group.start_soon(fetch, index, transcript_id, group)
    if failures:
        raise failures[0]
    return [t for t in transcripts if t is not None]


def _alias_hint(environment: str | None) -> str:
    if environment is None or _OBJECT_ID.match(environment):
        return ""
    return (
        f" (--environment takes the environment ID a transcript's `environmentID` shows, not an "
        f"alias such as {environment!r})"
    )


def _described(filters: SearchFilters) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in filters.body().items())
    return shown or "no filters"


def suite_file_name(suite: Suite) -> str:
    origin = suite.tests[0].imported_from
    name = origin.transcript_id if origin is not None else suite.name
    return "transcript-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".yaml"


def suite_yaml(suite: Suite) -> str:
    header = (
        "# Imported by `vf-mcp eval import`: review the checks marked `proposed` before gating "
        "on them.\n# It holds users' words: keep it like user data.\n"
    )
    document = suite_document(suite)
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    # YAML reads a few characters written as themselves (NEL, U+0085) as a line break: such
    # words are written escaped, so the suite says what the user said.
    if yaml.safe_load(body) != document:
        body = yaml.safe_dump(document, sort_keys=False, allow_unicode=False, width=100)
    return header + body


class PartlyWritten(Exception):
    """Writing into an existing folder stopped after some suites were moved into place."""

    def __init__(self, cause: OSError, written: int, total: int) -> None:
        super().__init__(str(cause))
        self.cause, self.written, self.total = cause, written, total


def existing_suites(out: Path, suites: Sequence[Suite]) -> list[str]:
    """The suite files `write_suites` would replace in `out`."""
    return [n for n in (suite_file_name(s) for s in suites) if (out / n).exists()]


def write_suites(out: Path, suites: Sequence[Suite]) -> list[Path]:
    """Write every suite under `out`: into a fresh folder beside it first, then renamed into
    place when `out` is new (all or nothing), or moved in file by file when it exists (then a
    failure part-way raises `PartlyWritten`, saying how many are in place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for suite in suites:
            (staging / suite_file_name(suite)).write_text(suite_yaml(suite), encoding="utf-8")
        if not out.exists():
            staging.rename(out)
            return sorted(out.iterdir())
        written: list[Path] = []
        staged = sorted(staging.iterdir())
        for file in staged:
            try:
                os.replace(file, out / file.name)
            except OSError as exc:
                raise PartlyWritten(exc, len(written), len(staged)) from exc
            written.append(out / file.name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _request(args: argparse.Namespace, settings: Settings) -> ImportRequest:
    project = args.project or settings.project_id
    if not project:
        raise ConfigurationError(
            f"no project: pass --project or set {ENV_PROJECT_ID} (Voiceflow > Agent > Settings)"
        )
    if args.limit is not None and args.limit < 1:
        raise ConfigurationError("--limit must be at least 1")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigurationError(f"--out {args.out} is a file; give the folder to write suites in")
    filters = SearchFilters(
        sessionID=args.session,
        environmentID=args.environment,
        startDate=args.since,
        endDate=args.until,
    )
    return ImportRequest(
        project_id=project,
        filters=filters,
        limit=args.limit,
        unredacted=args.unredacted,
        strictness="equals" if args.equals else "contains",
    )


async def _import(settings: Settings, request: ImportRequest) -> ImportResult:
    async with AnalyticsClient(settings) as analytics:
        return await import_suites(analytics, request)


def main(argv: list[str], environ: Mapping[str, str]) -> int:
    args = build_parser().parse_or_exit_code(argv)
    if isinstance(args, int):
        return args
    try:
        settings = Settings.from_env(environ)
        request = _request(args, settings)
        result = anyio.run(_import, settings, request)
    except _BAD_INPUT as exc:
        print(f"vf-mcp eval import: {exc}", file=sys.stderr)
        return 2
    except VfMcpError as exc:
        print(f"vf-mcp eval import: {exc}", file=sys.stderr)
        return 1
    if not result.suites:
        print(
            f"vf-mcp eval import: all {result.skipped} conversations found have no user turn "
            "(the user only opened them), so nothing was written; widen the search",
            file=sys.stderr,
        )
        return 2
    return _write(args, result)


def _write(args: argparse.Namespace, result: ImportResult) -> int:
    out: Path = args.out
    if not args.force and (existing := existing_suites(out, result.suites)):
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        print(
            f"vf-mcp eval import: {out / existing[0]}{more} already exist (imported before, "
            "perhaps reviewed since), so nothing was written; pass --force to replace them, or "
            "choose another --out",
            file=sys.stderr,
        )
        return 2
    try:
        written = write_suites(out, result.suites)
    except PartlyWritten as exc:
        cause = exc.cause
        print(
            f"vf-mcp eval import: cannot write {cause.filename or out} ({cause.strerror or cause}"
            f"); {exc.written} of {exc.total} suites were written to {out} before it, the rest "
            "not; fix that and import again with --force",
            file=sys.stderr,
        )
        return 2 if exc.written == 0 else 1
    except OSError as exc:
        print(
            f"vf-mcp eval import: cannot write {exc.filename or out} "
            f"({exc.strerror or exc}); nothing was written, choose another --out",
            file=sys.stderr,
        )
        return 2
    print(f"vf-mcp eval import: note: {USER_DATA_NOTICE}", file=sys.stderr)
    skipped = f"; skipped {result.skipped} with no user turn" if result.skipped else ""
    print(f"vf-mcp eval import: wrote {counted(len(written), 'suite')} to {out}{skipped}")
    return 0
