"""Distribution: the MCP Registry manifest (server.json) and the packages a release uploads.

The manifest is validated offline against the official 2025-12-11 `server.json` schema, vendored
unchanged in tests/schemas/server.schema.json from
https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json (see
tests/schemas/README.md).

The packaging tests build the wheel and sdist exactly as a release does (`python -m build`, with
build isolation), install the wheel with its dependencies into a fresh virtualenv and run it, and
run it through `uvx --from <wheel>`. Those installs resolve dependencies through pip's and uv's
configured indexes and shared caches; everything they run talks only to loopback.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import vf_mcp
from tests.canary import CANARY_KEY
from vf_mcp import config
from vf_mcp.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
SERVER_NAME = "io.github.vf-mcp/vf-mcp"
PACKAGED_AGENT = "vf_mcp/emulator/agents/order_support.yaml"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return load_json(ROOT / "server.json")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = load_json(ROOT / "tests" / "schemas" / "server.schema.json")
    assert schema["$id"] == SCHEMA_URL
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def package(manifest: dict[str, Any]) -> dict[str, Any]:
    (pypi,) = manifest["packages"]
    return pypi


def schema_errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [error.message for error in validator.iter_errors(document)]


# --- server.json ----------------------------------------------------------------------------


def test_server_json_is_valid_against_the_official_registry_schema(
    manifest: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    assert manifest["$schema"] == SCHEMA_URL
    assert schema_errors(validator, manifest) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("description",), "x" * 101),
        (("name",), "vf-mcp"),
        (("packages", 0, "version"), "latest"),
        (("packages", 0, "transport"), None),
        (("packages", 0, "environmentVariables", 0, "isSecret"), "yes"),
    ],
    ids=["long-description", "name-without-namespace", "latest", "no-transport", "bad-flag"],
)
def test_the_schema_check_rejects_what_the_registry_rejects(
    manifest: dict[str, Any],
    validator: jsonschema.Draft7Validator,
    path: tuple[str | int, ...],
    value: object,
) -> None:
    """The validation above is not vacuous: a broken copy of our own manifest fails it."""
    broken = copy.deepcopy(manifest)
    parent: Any = broken
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    assert schema_errors(validator, broken) != []


def test_server_json_names_the_pypi_package_run_with_uvx_over_stdio(
    manifest: dict[str, Any], package: dict[str, Any]
) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert manifest["name"] == SERVER_NAME
    assert package["registryType"] == "pypi"
    assert package["registryBaseUrl"] == "https://pypi.org"  # the only one the registry takes
    assert package["identifier"] == pyproject["project"]["name"] == "vf-mcp"
    assert package["runtimeHint"] == "uvx"
    assert package["transport"] == {"type": "stdio"}
    assert pyproject["project"]["scripts"]["vf-mcp"] == "vf_mcp:main"


def test_readme_proves_ownership_of_the_same_server_name(manifest: dict[str, Any]) -> None:
    """The registry checks the PyPI description (our README) for `mcp-name: <server name>`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = re.findall(r"^<!-- mcp-name: (\S+) -->$", readme, flags=re.MULTILINE)
    assert names == [manifest["name"]]


def test_versions_agree_everywhere(manifest: dict[str, Any], package: dict[str, Any]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    version = pyproject["project"]["version"]
    assert manifest["version"] == package["version"] == version == vf_mcp.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(version)}\]", changelog, flags=re.MULTILINE), (
        f"CHANGELOG.md has no section for {version}"
    )


def config_env_names() -> set[str]:
    """Every environment variable `Settings` reads (its declarations), which are also exactly
    config.py's `ENV_*` constants (the names the rest of the code uses in messages)."""
    names = set(config.env_names().values())
    constants = {value for key, value in vars(config).items() if key.startswith("ENV_")}
    assert names == constants
    return names


def test_server_json_declares_exactly_the_variables_the_server_reads(
    package: dict[str, Any],
) -> None:
    declared = [variable["name"] for variable in package["environmentVariables"]]
    assert len(declared) == len(set(declared)), "a variable is declared twice"
    assert set(declared) == config_env_names()
    assert all(variable.get("description") for variable in package["environmentVariables"])


def settings_field(env_name: str) -> str:
    fields = {env: field for field, env in config.env_names().items()}
    assert env_name in fields, f"vf_mcp.config maps no Settings field to {env_name}"
    return fields[env_name]


def test_the_api_key_alone_is_required_and_secrets_are_marked(package: dict[str, Any]) -> None:
    """Required: only the key. Secret: exactly the variables Settings keeps as `SecretStr`."""
    variables = {v["name"]: v for v in package["environmentVariables"]}
    required = {name for name, v in variables.items() if v.get("isRequired")}
    assert required == {config.ENV_API_KEY}
    secret = {name for name, v in variables.items() if v.get("isSecret")}
    kept_secret = {
        name
        for name in variables
        if "SecretStr" in str(Settings.model_fields[settings_field(name)].annotation)
    }
    assert config.ENV_API_KEY in secret
    assert secret == kept_secret
    assert not [name for name in secret if "default" in variables[name]]


def test_declared_defaults_and_choices_are_what_the_server_uses(package: dict[str, Any]) -> None:
    """A variable with a real default declares it, and setting a variable to its declared default
    changes nothing; every declared choice is accepted."""
    base = {config.ENV_API_KEY: CANARY_KEY}
    unset = Settings.from_env(base)
    for variable in package["environmentVariables"]:
        name = variable["name"]
        field_default = Settings.model_fields[settings_field(name)].default
        if "default" not in variable:
            assert field_default in (None, (), frozenset()), f"{name} should declare its default"
            continue
        assert Settings.from_env({**base, name: variable["default"]}) == unset, name
        for choice in variable.get("choices", []):
            Settings.from_env({**base, name: choice})


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({}, ()),
        ({config.ENV_API_KEY: "VF.WS.0123456789abcdef01234567.workspace"}, ()),
        ({config.ENV_API_KEY: CANARY_KEY}, ("--transport", "http", "--host", "0.0.0.0")),
    ],
    ids=["key-missing", "key-wrong-shape", "http-not-loopback"],
)
def test_troubleshooting_quotes_the_start_errors_users_see(
    env: dict[str, str], args: tuple[str, ...]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vf_mcp", *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    troubleshooting = readme.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    quoted = " ".join(troubleshooting.split())
    spans = re.findall(r"``(vf-mcp: .+?)``|(?<!`)`(vf-mcp: [^`]+)`(?!`)", quoted)
    assert " ".join(line.split()) in {a or b for a, b in spans}, (
        f"README's Troubleshooting does not quote this start error word for word: {line}"
    )


# --- the built packages ---------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path
    venv: Path


def run(*args: str | Path, timeout: float = 180, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def venv_bin(venv: Path, name: str) -> Path:
    return venv / "bin" / name


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Build once per module (sdist, then the wheel from the sdist) and install the wheel with its
    dependencies into a fresh virtualenv. pip's and uv's caches are shared with the machine."""
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail("`build` is not installed: run scripts/test (it installs the test extra)")
    work = tmp_path_factory.mktemp("dist")
    dist = work / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT, timeout=300)
    (wheel,) = dist.glob("vf_mcp-*.whl")
    (sdist,) = dist.glob("vf_mcp-*.tar.gz")
    venv = work / "fresh-venv"
    # A venv without pip (fast to create); this interpreter's pip installs into it.
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(
        sys.executable,
        *("-m", "pip", "--python", venv_bin(venv, "python"), "install", "--quiet", wheel),
        timeout=300,
    )
    return Built(wheel=wheel, sdist=sdist, venv=venv)


def test_wheel_and_sdist_carry_the_package_its_data_and_the_ownership_line(built: Built) -> None:
    version = vf_mcp.__version__
    assert built.wheel.name == f"vf_mcp-{version}-py3-none-any.whl"
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"vf_mcp-{version}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"vf_mcp-{version}.dist-info/entry_points.txt").decode()
    assert PACKAGED_AGENT in names
    assert {"vf_mcp/__init__.py", "vf_mcp/__main__.py", "vf_mcp/emulator/__init__.py"} <= names
    # `Typing :: Typed` is a promise only the marker file keeps (PEP 561).
    assert "vf_mcp/py.typed" in names
    assert "vf_mcp/transcripts/schemas/transcript-v1.json" in names
    assert "vf_mcp/transcripts/schemas/transcript-v2.json" in names
    # The chat's and the report's templates are package data, loaded by name at render time.
    assert {
        "vf_mcp/chat/templates/chat.html.jinja",
        "vf_mcp/evaluation/templates/report.html.jinja",
        "vf_mcp/evaluation/templates/report.css",
    } <= names
    assert not [n for n in names if n.startswith("tests/")]
    assert f"\nVersion: {version}\n" in metadata
    assert f"<!-- mcp-name: {SERVER_NAME} -->" in metadata  # PyPI shows the README
    assert "vf-mcp = vf_mcp:main" in entry_points
    with tarfile.open(built.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"server.json", "README.md", "pyproject.toml", PACKAGED_AGENT} <= members


def test_the_installed_wheel_runs(built: Built) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    version = run(venv_bin(built.venv, "vf-mcp"), "--version", env=env, cwd=built.venv)
    assert version.stdout.strip() == f"vf-mcp {vf_mcp.__version__}"
    usage = run(venv_bin(built.venv, "python"), "-m", "vf_mcp", "--help", env=env, cwd=built.venv)
    assert "usage: vf-mcp" in usage.stdout and "demo" in usage.stdout
    # The demo loads the agent file from the installed package and runs the emulator on loopback.
    demo = run(venv_bin(built.venv, "vf-mcp"), "demo", env=env, cwd=built.venv, timeout=60)
    assert "Hi! I'm the Acme order assistant." in demo.stdout
    where = run(
        venv_bin(built.venv, "python"),
        "-c",
        "import vf_mcp; print(vf_mcp.__file__)",
        env=env,
        cwd=built.venv,
    )
    assert Path(where.stdout.strip()).is_relative_to(built.venv)  # not this checkout
    # The report's and the chat's templates load from the installed package.
    render = (
        "from vf_mcp.evaluation.html_report import html_report\n"
        "from vf_mcp.domain.transcript import RunResult\n"
        "from vf_mcp.chat import render_chat\n"
        "print(html_report(RunResult()))\n"
        "print(render_chat([]))\n"
    )
    page = run(venv_bin(built.venv, "python"), "-c", render, env=env, cwd=built.venv)
    assert "<title>vf-mcp evaluation: PASSED</title>" in page.stdout
    assert "The conversation has not started yet." in page.stdout


def test_uvx_runs_the_wheel(built: Built) -> None:
    uvx = Path(sys.executable).parent / "uvx"
    if not uvx.exists():
        pytest.fail("uvx is not installed: run scripts/test (the test extra installs uv)")
    # The machine's environment (TLS certificates, proxies, uv settings), but no Python download.
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    command = (uvx, "--python", sys.executable, "--from", built.wheel, "vf-mcp")
    usage = run(*command, "--help", env=env, cwd=built.venv, timeout=300)
    assert "usage: vf-mcp" in usage.stdout
    version = run(*command, "--version", env=env, cwd=built.venv, timeout=300)
    assert version.stdout.strip() == f"vf-mcp {vf_mcp.__version__}"
