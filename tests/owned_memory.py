"""What vf-mcp itself holds in memory: a census for leak checks that load cannot sway.

Counting every live object (`gc.get_objects()`) mixes vf-mcp's growth with its libraries' pools
and the test's own clients, whose size after a round depends on timing: on a busy machine that
noise alone passed 2,000 objects a round. Tracing allocations (`tracemalloc`) would isolate the
package, but slows the load 3.5-fold, past the clients' timeouts.

So this census walks from vf-mcp's own roots, its modules' globals and every live instance of its
classes, through plain containers and its own instances, and stops at anything else (a library's
object is counted, not entered). A leak in vf-mcp is a container of vf-mcp's that keeps growing,
or its instances piling up: both are counted here; a connection pool filling up is not.
"""

from __future__ import annotations

import gc
import sys
from collections import Counter, OrderedDict, defaultdict, deque
from dataclasses import dataclass
from types import ModuleType
from typing import Any

PACKAGE = "vf_mcp"
# The emulator is the test's runtime, not the server under test.
OUTSIDE = ("vf_mcp.emulator",)
_CONTAINERS = (dict, list, tuple, set, frozenset, deque, OrderedDict, defaultdict)


def _own(module: str) -> bool:
    inside = module == PACKAGE or module.startswith(PACKAGE + ".")
    return inside and not module.startswith(OUTSIDE)


def _enters(value: object) -> bool:
    """Walk into plain containers and vf-mcp's own instances; count anything else as a leaf."""
    kind = type(value)
    return kind in _CONTAINERS or (not isinstance(value, type) and _own(kind.__module__))


@dataclass(frozen=True)
class Census:
    objects: int
    bytes: int
    kinds: Counter[str]

    def growth(self, earlier: Census) -> str:
        """The kinds that grew most since `earlier`, to say where a leak is."""
        grown = (self.kinds - earlier.kinds).most_common(5)
        return ", ".join(f"{kind} +{count}" for kind, count in grown) or "nothing"


def census(*, bounded: tuple[type, ...] = ()) -> Census:
    """Everything reachable from vf-mcp's roots as described above, after a full collection,
    but what instances of `bounded` hold: stores that keep more records with every new
    conversation, task or turn by design, up to a cap tested on its own."""
    gc.collect()
    modules: list[ModuleType] = [m for name, m in list(sys.modules.items()) if _own(name)]
    live = gc.get_objects()
    seen: set[int] = {id(m) for m in modules}
    visited: list[Any] = []  # kept alive while walking, so no id is reused by a new object
    # First mark what the bounded stores hold, so the census below does not count it.
    _walk([o for o in live if isinstance(o, bounded)], seen, visited, Counter())
    own = [o for o in live if not isinstance(o, type) and _own(type(o).__module__)]
    kinds: Counter[str] = Counter()
    size = _walk([*(vars(m) for m in modules), *own], seen, visited, kinds)
    return Census(objects=sum(kinds.values()), bytes=size, kinds=kinds)


def _walk(stack: list[Any], seen: set[int], visited: list[Any], kinds: Counter[str]) -> int:
    """Count what `stack` reaches that is not `seen` yet into `kinds`; returns its bytes."""
    size = 0
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        visited.append(value)
        kinds[f"{type(value).__module__}.{type(value).__qualname__}"] += 1
        size += sys.getsizeof(value)
        if _enters(value):
            stack += [r for r in gc.get_referents(value) if not isinstance(r, ModuleType | type)]
    return size
