"""`subagents runs show` for a pattern run: its arguments and its tree of children, each with its status,
tokens and cost, and the totals (a pattern's own row holds none: its children did the spending)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from subagents.history.records import RunRecord, RunSummary
from subagents.history.store import RunStore
from subagents.messages import Usage

MAX_DEPTH = 8  # deeper trees are cut (a chain this deep is a loop the depth guard should have stopped)
MAX_CHILDREN = 1000  # shown per pattern run


@dataclass(frozen=True)
class Node:
    role: str
    run: RunSummary
    children: tuple[Node, ...] = ()


def is_pattern(record: RunRecord) -> bool:
    from subagents.orchestration import PATTERN_MODEL  # the engine, only when a run is shown

    return record.model == PATTERN_MODEL


async def load_tree(store: RunStore, record: RunRecord, depth: int = 0) -> tuple[Node, ...]:
    """The pattern's children, oldest first, each with the role it played; nested patterns recursively."""
    from subagents.orchestration import recorded_summary

    roles = {c.get("run_id"): c.get("role", "-") for c in (recorded_summary(record) or {}).get("children", [])}
    nodes = []
    for child in reversed(await store.list(parent_id=record.id, limit=MAX_CHILDREN)):
        nested: tuple[Node, ...] = ()
        if depth < MAX_DEPTH and child.model == record.model:
            nested = await load_tree(store, await store.get(child.id), depth + 1)
        nodes.append(Node(str(roles.get(child.id, "-")), child, nested))
    return tuple(nodes)


def walk(nodes: tuple[Node, ...], depth: int = 0) -> Iterator[tuple[int, Node]]:
    for node in nodes:
        yield depth, node
        yield from walk(node.children, depth + 1)


def totals(nodes: tuple[Node, ...]) -> tuple[Usage, float | None]:
    """Usage and cost over every run in the tree (None when any run's cost is unknown)."""
    usage, cost, unknown = Usage(), 0.0, False
    for _, node in walk(nodes):
        usage += node.run.usage
        unknown = unknown or node.run.cost_usd is None
        cost += node.run.cost_usd or 0.0
    return usage, None if unknown else cost


def arguments(record: RunRecord) -> dict[str, Any]:
    """The pattern's arguments beyond task, context and files, from its first recorded message."""
    from subagents.orchestration.runner import recorded_arguments

    return recorded_arguments(record)


def tree_rows(nodes: tuple[Node, ...]) -> list[tuple[str, ...]]:
    """One row per run: role (indented by depth), id, status, agent, model, turns, tokens, cost."""
    from subagents.cli.runs import _cost, _count

    rows: list[tuple[str, ...]] = []
    for depth, node in walk(nodes):
        r = node.run
        rows.append(
            (
                "  " * depth + node.role,
                r.id,
                r.status,
                r.agent,
                r.model,
                str(r.turns),
                f"{_count(r.usage.input_tokens)}/{_count(r.usage.output_tokens)}",
                _cost(r.cost_usd),
            )
        )
    return rows


def render_tree(nodes: tuple[Node, ...]) -> str:
    from subagents.cli.runs import _cost, _count, _table

    if not nodes:
        return "(no child runs recorded)"
    headers = ("ROLE", "RUN", "STATUS", "AGENT", "MODEL", "TURNS", "TOKENS IN/OUT", "COST")
    usage, cost = totals(nodes)
    total = ("TOTAL", "", "", "", "", "", f"{_count(usage.input_tokens)}/{_count(usage.output_tokens)}", _cost(cost))
    return _table(headers, [*tree_rows(nodes), total], right={5, 6, 7})
