"""The model DAG: edges from refs, cycles, topological order, selection. Pure functions over names."""
from __future__ import annotations

from runner.errors import RunnerError


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """A cycle as a closed path [a, b, a], or None. Deterministic: models visited in name order."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(deps.get(node, [])):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(deps):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def topological_order(deps: dict[str, list[str]]) -> list[str]:
    """Dependencies first; ties broken by name so the order is stable. Raises on a cycle."""
    cycle = find_cycle(deps)
    if cycle:
        raise RunnerError(f"models form a cycle: {' -> '.join(cycle)}",
                          hint="a model can not depend on itself, directly or through others")
    order: list[str] = []
    done: set[str] = set()
    remaining = set(deps)
    while remaining:
        ready = sorted(n for n in remaining if all(d in done for d in deps[n] if d in deps))
        order.extend(ready)
        done.update(ready)
        remaining.difference_update(ready)
    return order


def ancestors(deps: dict[str, list[str]], name: str) -> set[str]:
    seen: set[str] = set()
    stack = list(deps.get(name, []))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(deps.get(node, []))
    return seen


def select(deps: dict[str, list[str]], name: str | None) -> set[str]:
    """`--select MODEL`: the model and everything it depends on; None selects all."""
    if name is None:
        return set(deps)
    if name not in deps:
        raise RunnerError(f"--select {name}: no such model", hint=f"models: {', '.join(sorted(deps))}")
    return {name} | ancestors(deps, name)
