"""Finding and reading suites: files, directories, inline YAML/JSON; either dialect.

A file is read as a voiceflow-cli suite when it lists test files (`tests: [{id, file}]`) or uses
its keys (`environmentName`, `newSessionPerTest`), as a voiceflow-cli test when it has
`interactions` or `agent` at the top, and as a vf-mcp suite otherwise. A directory means its
`suite.yaml` when there is one (as `voiceflow test execute DIR`), else every `*.yaml`, `*.yml` and
`*.json` file directly inside it, in name order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vf_mcp.errors import ScriptError
from vf_mcp.evaluation import voiceflow_cli
from vf_mcp.evaluation.reading import parse_text, read_text
from vf_mcp.evaluation.script import Suite, resolve_under

SUITE_SUFFIXES = (".yaml", ".yml", ".json")


def suite_from_data(
    data: Any, *, source: str, base_dir: Path | None, root: Path | None = None
) -> Suite:
    """A suite from parsed YAML/JSON of either dialect; `from_state` paths are made absolute
    (from `base_dir`), and kept inside `root` when given (the server's tests directory)."""
    suite = _suite_from_data(data, source=source, base_dir=base_dir)
    return _anchor_start_states(suite, base_dir, root)


def _anchor_start_states(suite: Suite, base_dir: Path | None, root: Path | None) -> Suite:
    tests = []
    for test in suite.tests:
        start = test.from_state
        if start is not None:
            where = f"{suite.source} / {test.id}: from_state {start.path!r}"
            if base_dir is None:
                raise ScriptError(
                    f"{where} names a file, and an inline suite has no folder to find it in; "
                    "save the suite as a file beside the state"
                )
            path = (base_dir / start.path).resolve()
            if root is not None and root.resolve() not in path.parents:
                raise ScriptError(f"{where} is outside the tests directory; move it inside")
            field = "file" if start.file is not None else "recording"
            start = start.model_copy(update={field: str(path)})
            test = test.model_copy(update={"from_state": start})
        tests.append(test)
    return suite.model_copy(update={"tests": tests})


def _suite_from_data(data: Any, *, source: str, base_dir: Path | None) -> Suite:
    if voiceflow_cli.looks_like_suite(data):
        if base_dir is None:
            raise ScriptError(f"{source}: a voiceflow-cli suite lists files, so give it as a file")
        return voiceflow_cli.import_suite_data(data, base_dir=base_dir, source=source)
    if voiceflow_cli.looks_like_test(data):
        warnings: list[str] = []
        test = voiceflow_cli.import_test_data(
            data, test_id=Path(source).stem or "test", new_session=True, where=source,
            warnings=warnings,
        )  # fmt: skip
        return Suite(
            name=test.name or test.id,
            on_failure="stop",
            tests=[test],
            dialect="voiceflow-cli",
            streaming=False,
            user_id_prefix="test-",
            source=source,
            warnings=warnings,
        )
    if not isinstance(data, dict):
        raise ScriptError(f"{source}: a suite must be a mapping with `name` and `tests`")
    try:
        return Suite.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False)[:3]:
            where = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
            problems.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
        raise ScriptError(f"{source}: " + "; ".join(problems)) from None


def load_file(path: Path, root: Path | None = None) -> Suite:
    """The suite in the file at `path` (inside `root`, when given: the server's tests directory)."""
    text = read_text(path, root)
    return suite_from_data(
        parse_text(text, str(path)), source=str(path), base_dir=path.parent, root=root
    )


def load_path(path: Path, root: Path | None = None) -> list[Suite]:
    """The suites at `path`: a file, or a directory (its suite.yaml, else its suite files).

    With `root`, every file read must lie inside it once symlinks are resolved: a link in a
    sub-folder of the tests directory must not read a suite from elsewhere.
    """
    if path.is_dir():
        if (path / "suite.yaml").is_file():
            return [load_file(path / "suite.yaml", root)]
        files = sorted(p for p in path.iterdir() if p.suffix in SUITE_SUFFIXES and p.is_file())
        if not files:
            raise ScriptError(f"{path}: no suite.yaml and no *.yaml, *.yml or *.json files")
        return [load_file(p, root) for p in files]
    if not path.exists():
        raise ScriptError(f"{path}: no such file or directory")
    return [load_file(path, root)]


def load_script(script: str, *, tests_dir: Path | None = None) -> list[Suite]:
    """What the `run_conversation` tool accepts: inline YAML/JSON, or a file under `tests_dir`.

    One line without a newline that names an existing file under `tests_dir` is read as that file;
    anything else is parsed as the script itself.
    """
    text = script.strip()
    if tests_dir is not None and "\n" not in text and text.endswith(SUITE_SUFFIXES):
        return load_path(resolve_under(tests_dir, text), tests_dir)
    data = parse_text(text, "<inline>")
    if isinstance(data, dict) and "tests" not in data and ("turns" in data or "simulate" in data):
        data = {"name": str(data.get("name") or "inline"), "tests": [data]}  # one bare test
    return [suite_from_data(data, source="<inline>", base_dir=tests_dir, root=tests_dir)]


__all__ = ["load_file", "load_path", "load_script", "parse_text", "suite_from_data"]
