"""Reading the agent folders again while the server runs: the new catalog, what changed, what to log.

The files are read exactly as at start-up (same loader, same limits, same `--agents` selection), so a
reload can bring nothing a restart would not. A file that loaded before and is broken now keeps its last
good agent (catalog.py); an agent whose file is gone is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from subagents.definitions.catalog import Catalog, load_catalog, select_agents
from subagents.definitions.loader import Problem
from subagents.definitions.spec import AgentSpec


@dataclass(frozen=True)
class Reload:
    catalog: Catalog
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    new_problems: tuple[Problem, ...]  # found now and not at the last load: the ones worth a log line

    @property
    def any_change(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    @property
    def touched(self) -> list[AgentSpec]:
        """The agents that are new or different: the ones whose tool gaps are worth saying again."""
        return [self.catalog.agents[name] for name in (*self.added, *self.changed)]

    def summary(self) -> str:
        parts = [f"{label} {', '.join(names)}" for label, names in self._groups() if names]
        return "; ".join(parts) or "no agent changed"

    def _groups(self) -> list[tuple[str, tuple[str, ...]]]:
        return [("added", self.added), ("changed", self.changed), ("removed", self.removed)]


def reload_catalog(current: Catalog, agents_filter: Sequence[str] = ()) -> Reload:
    """The folders of `current`, read again; a file that stopped loading keeps its agent from `current`."""
    last_good = {spec.source: spec for spec in current.agents.values() if spec.source is not None}
    required = tuple(layer.path for layer in current.layers if layer.label == "agents-dir")
    fresh = load_catalog(current.layers, require_dirs=required, last_good=last_good)
    fresh = select_agents(fresh, agents_filter, strict=False)
    old, new = current.agents, fresh.agents
    seen = set(current.problems)
    return Reload(
        catalog=fresh,
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        changed=tuple(sorted(name for name in new.keys() & old.keys() if new[name] != old[name])),
        new_problems=tuple(p for p in fresh.problems if p not in seen),
    )
