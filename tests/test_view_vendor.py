"""The view's vendored ext-apps client is what scripts/vendor-ext-apps builds from the pins.

vf_mcp/view/ext-apps-app.json records the package versions it was built from, its size and its
sha256. The test checks that record against the packages npm installed in tests/clients (and the
pins in its package.json), the vendored file against the record, and rebuilds the bundle from
the installed packages to see the same hash: a changed pin, a hand edit or a different bundler
fails here until `scripts/vendor-ext-apps` is run again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib.resources import files

from tests.node_tools import CLIENTS, pinned_version, require, system_node

VIEW = files("vf_mcp.view")


def recorded_pin() -> dict[str, object]:
    pin: dict[str, object] = json.loads(VIEW.joinpath("ext-apps-app.json").read_text())
    return pin


def test_the_pin_names_the_installed_and_declared_packages() -> None:
    declared = json.loads((CLIENTS / "package.json").read_text(encoding="utf-8"))["dependencies"]
    packages = recorded_pin()["packages"]
    assert isinstance(packages, dict)
    assert packages["@modelcontextprotocol/ext-apps"] == "2.0.4"
    for name, version in packages.items():
        installed = require(CLIENTS / "node_modules" / name / "package.json", name)
        assert pinned_version(installed) == version == declared[name], name


def test_the_vendored_file_matches_its_pin() -> None:
    vendored = VIEW.joinpath("ext-apps-app.js").read_bytes()
    pin = recorded_pin()
    assert pin["bytes"] == len(vendored)
    assert pin["sha256"] == hashlib.sha256(vendored).hexdigest()
    assert b"</script" not in vendored.lower()  # it is inlined in a <script> element


def test_the_script_rebuilds_the_vendored_file_from_the_installed_packages() -> None:
    script = require(CLIENTS / "vendor_ext_apps.mjs", "the vendoring script")
    built = subprocess.run(
        [system_node(), str(script), "--print-pin"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=CLIENTS,
    )
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout) == recorded_pin(), "run scripts/vendor-ext-apps"
