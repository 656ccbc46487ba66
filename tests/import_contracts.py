"""An import-linter contract the built-in ones leave out: no import circle between any two modules.

`acyclic_siblings` finds circles between the modules of one package (and between packages), but
not one through a package's own `__init__`: `vf_mcp.store` importing `vf_mcp.store.memory`, which
imported `vf_mcp.store` back, was one. This contract looks at every module of the root package,
imports made inside functions and under `TYPE_CHECKING` included. `lint-imports` (scripts/test)
loads it from pyproject's `[tool.importlinter]`.
"""

from __future__ import annotations

from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils
from importlinter.application.contract_utils import AlertLevel


class AcyclicModulesContract(Contract):
    """Kept when no module reaches itself through the imports of the root package's modules."""

    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[attr-defined]
            unmatched_alerting=AlertLevel.ERROR,
        )
        imports = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
        circles = [sorted(c) for c in _strongly_connected(imports) if len(c) > 1]
        found = [
            [
                (importer, imported, _lines(graph, importer, imported))
                for importer in circle
                for imported in sorted(imports[importer] & set(circle))
            ]
            for circle in sorted(circles)
        ]
        return ContractCheck(
            kept=not found,
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
            metadata={"circles": found},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for circle in check.metadata["circles"]:
            modules = {importer for importer, _, _ in circle}
            output.print_error(f"These {len(modules)} modules import each other in a circle:")
            for importer, imported, lines in circle:
                output.print_error(f"- {importer} -> {imported} (l.{lines})")
            output.new_line()


def _lines(graph: ImportGraph, importer: str, imported: str) -> str:
    details: list[dict[str, Any]] = graph.get_import_details(importer=importer, imported=imported)
    return ", ".join(str(detail["line_number"]) for detail in details) or "?"


def _strongly_connected(imports: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components, without recursion (a long chain of imports must not overflow)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(sorted(imports[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components
