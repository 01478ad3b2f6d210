"""The layered agent catalog: bundled < ~/.claude/agents < project .claude/agents < each --agents-dir.

The project layer is every `.claude/agents` from the project folder up to its repository root, the
closest winning (discovery.py). Layers override by the name as written, as Claude Code does; within one
folder tree, two files of one name keep the later path in sorted order (Claude Code's rule). Then each
agent gets its MCP tool name (names.py), and a mapped name is listed as an info line.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from subagents.definitions.discovery import project_agent_dirs, scan_agent_files
from subagents.definitions.loader import Problem, load_agent_file
from subagents.definitions.names import assign_tool_names, tool_name_for
from subagents.definitions.spec import RESERVED_NAMES, AgentSpec
from subagents.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layer:
    label: str  # bundled, user, project, agents-dir
    path: Path


@dataclass
class Catalog:
    agents: dict[str, AgentSpec] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    layers: tuple[Layer, ...] = ()

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    def get(self, name: str) -> AgentSpec | None:
        """The agent served as this tool name, or written with this name (`powershell-5.1-expert`)."""
        spec = self.agents.get(name)
        if spec is None:
            spec = next((s for s in self.agents.values() if s.agent_name == name), None)
        return spec

    def problems_for(self, spec: AgentSpec) -> list[Problem]:
        """What was found in this agent's own file: all a command about one agent needs to say."""
        return [p for p in self.problems if spec.source is not None and p.path == spec.source]

    def log_problems(self, problems: Iterable[Problem] | None = None) -> None:
        levels = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}
        for problem in self.problems if problems is None else problems:
            log.log(levels[problem.level], "%s", problem)


def bundled_agents_dir() -> Path:
    """The agents shipped in the wheel, or the repository's agents/ in a source checkout."""
    packaged = Path(str(resources.files("subagents"))) / "bundled_agents"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "agents"


def default_layers(
    *, project_dir: Path | None, extra_dirs: Sequence[Path] = (), bundled: bool = True, home: Path | None = None
) -> tuple[Layer, ...]:
    home = home or Path.home()
    layers: list[Layer] = []
    if bundled:
        layers.append(Layer("bundled", bundled_agents_dir()))
    layers.append(Layer("user", home / ".claude" / "agents"))
    if project_dir is not None:
        layers += [Layer("project", d) for d in project_agent_dirs(project_dir, home=home)]
    layers += [Layer("agents-dir", d) for d in extra_dirs]
    return tuple(_dedupe(layers))


def _dedupe(layers: Iterable[Layer]) -> Iterable[Layer]:
    # The same directory named twice (e.g. --agents-dir .claude/agents) loads once, at its highest layer.
    seen: dict[Path, Layer] = {}
    for layer in layers:
        key = layer.path.expanduser().resolve()
        seen.pop(key, None)
        seen[key] = layer
    return seen.values()


def load_catalog(
    layers: Sequence[Layer], *, require_dirs: Sequence[Path] = (), last_good: Mapping[Path, AgentSpec] | None = None
) -> Catalog:
    """Load every layer, lowest first, so a higher layer's agent replaces a lower one of the same name.
    `last_good` (a reload's previous agents by file) stands in for a file that no longer loads."""
    catalog = Catalog(layers=tuple(layers))
    by_name: dict[str, AgentSpec] = {}
    for layer in layers:
        if not layer.path.exists():
            if layer.path in require_dirs:
                catalog.problems.append(Problem(layer.path, "error", "agents directory does not exist"))
            continue
        for spec in _load_layer(catalog.problems, layer, last_good or {}):
            previous = by_name.get(spec.agent_name)
            if previous is not None:
                catalog.problems.append(
                    Problem(
                        _where(spec),
                        "warning",
                        f"overrides agent {spec.agent_name!r} from {previous.source} ({previous.layer})",
                    )
                )
                spec = spec.model_copy(update={"shadows": previous.layer})
            by_name[spec.agent_name] = spec
    catalog.agents = _serve(list(by_name.values()), catalog.problems)
    return catalog


def _load_layer(problems: list[Problem], layer: Layer, last_good: Mapping[Path, AgentSpec]) -> list[AgentSpec]:
    scan = scan_agent_files(layer.path)
    problems += scan.problems
    kept: dict[str, AgentSpec] = {}
    for path in scan.files:
        result = load_agent_file(path, layer=layer.label)
        spec = result.spec
        if spec is None and path in last_good:
            spec = _keep_last_good(problems, last_good[path], result.problems)
        else:
            problems += result.problems
        if spec is None:
            continue
        earlier = kept.get(spec.agent_name)
        if earlier is not None:
            problems.append(
                Problem(
                    _where(earlier),
                    "warning",
                    f"agent {spec.agent_name!r} is defined again in {path}; that file is used and this one is "
                    "ignored (in one folder tree the later path in sorted order wins, as in Claude Code)",
                )
            )
        kept[spec.agent_name] = spec
    return list(kept.values())


def _keep_last_good(problems: list[Problem], previous: AgentSpec, found: Iterable[Problem]) -> AgentSpec:
    """A file that loaded before and no longer does: its last good agent stays served, and its error says so."""
    for problem in found:
        if problem.level == "error":
            problem = Problem(
                problem.path,
                "error",
                f"{problem.message}; still serving the last good version of agent {previous.agent_name!r} "
                "until the file is fixed",
            )
        problems.append(problem)
    return previous.model_copy(update={"name": previous.agent_name, "declared_name": None, "shadows": None})


def _serve(specs: list[AgentSpec], problems: list[Problem]) -> dict[str, AgentSpec]:
    """Key every agent by its MCP tool name; say where that is not the name as written."""
    tool_names = assign_tool_names((s.agent_name for s in specs), RESERVED_NAMES)
    holder = {tool_names[s.agent_name]: s for s in specs}
    agents: dict[str, AgentSpec] = {}
    for spec in specs:
        tool = tool_names[spec.agent_name]
        if tool != spec.agent_name:
            problems.append(Problem(_where(spec), "info", _renamed(spec.agent_name, tool, holder)))
        agents[tool] = spec.model_copy(update={"name": tool, "declared_name": spec.agent_name})
    return agents


def _renamed(name: str, tool: str, holder: dict[str, AgentSpec]) -> str:
    mapped = tool_name_for(name)
    if mapped == tool:
        return (
            f"served as MCP tool {tool!r}: the name {name!r} is not a valid MCP tool name "
            "(letters, digits, '_' and '-', at most 64)"
        )
    other = holder.get(mapped)
    taken_by = (
        "one of the server's own tools"
        if mapped in RESERVED_NAMES or other is None
        else f"the agent {other.agent_name!r} in {_where(other)}"
    )
    return f"served as MCP tool {tool!r}: {mapped!r} is taken by {taken_by}"


def _where(spec: AgentSpec) -> Path:
    return spec.source if spec.source is not None else Path(spec.agent_name)


def select_agents(catalog: Catalog, patterns: Sequence[str], *, strict: bool = True) -> Catalog:
    """Only the agents a name or glob in `patterns` matches (by tool name or the name as written), for
    `serve --agents`. A plain name that matches nothing is an error: it is a typo, not a wish (unless not
    `strict`: on a reload, the agent's file may just have gone)."""
    if not patterns:
        return catalog
    names = {tool: (tool, spec.agent_name) for tool, spec in catalog.agents.items()}
    kept = {
        t: s for t, s in catalog.agents.items() if any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names[t])
    }
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(n, pattern) for both in names.values() for n in both):
            continue
        if strict and not any(c in pattern for c in "*?["):
            known = ", ".join(sorted(catalog.agents)[:30]) + (", …" if len(catalog.agents) > 30 else "")
            raise ConfigError(f"--agents names {pattern!r}, which is not a loaded agent; loaded: {known or 'none'}")
        log.warning("--agents pattern %r matches no agent", pattern)
    return replace(catalog, agents=kept)
