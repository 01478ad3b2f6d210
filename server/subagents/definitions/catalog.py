"""The layered agent catalog: bundled < ~/.claude/agents < project .claude/agents < each --agents-dir."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from subagents.definitions.loader import Problem, load_agent_file
from subagents.definitions.spec import AgentSpec

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
        return self.agents.get(name)

    def log_problems(self) -> None:
        for problem in self.problems:
            (log.error if problem.level == "error" else log.warning)("%s", problem)


def bundled_agents_dir() -> Path:
    """The agents shipped in the wheel, or the repository's agents/ in a source checkout."""
    packaged = Path(str(resources.files("subagents"))) / "bundled_agents"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "agents"


def default_layers(
    *, project_dir: Path | None, extra_dirs: Sequence[Path] = (), bundled: bool = True, home: Path | None = None
) -> tuple[Layer, ...]:
    layers: list[Layer] = []
    if bundled:
        layers.append(Layer("bundled", bundled_agents_dir()))
    layers.append(Layer("user", (home or Path.home()) / ".claude" / "agents"))
    if project_dir is not None:
        layers.append(Layer("project", project_dir / ".claude" / "agents"))
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


def agent_files(directory: Path) -> list[Path]:
    """Markdown files under the directory, recursively, in a stable order (Claude Code scans recursively)."""
    if directory.is_file():
        return [directory]  # `subagents agents validate one-agent.md`
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*.md") if p.is_file() and not _hidden(p, directory))


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def load_catalog(layers: Sequence[Layer], *, require_dirs: Sequence[Path] = ()) -> Catalog:
    """Load every layer, lowest first, so a higher layer's agent replaces a lower one of the same name."""
    catalog = Catalog(layers=tuple(layers))
    for layer in layers:
        if not layer.path.exists():
            if layer.path in require_dirs:
                catalog.problems.append(Problem(layer.path, "error", "agents directory does not exist"))
            continue
        _load_layer(catalog, layer)
    return catalog


def _load_layer(catalog: Catalog, layer: Layer) -> None:
    names_in_layer: dict[str, Path] = {}
    for path in agent_files(layer.path):
        result = load_agent_file(path, layer=layer.label)
        catalog.problems.extend(result.problems)
        spec = result.spec
        if spec is None:
            continue
        if spec.name in names_in_layer:
            catalog.problems.append(
                Problem(
                    path,
                    "warning",
                    f"agent {spec.name!r} is also defined in "
                    f"{names_in_layer[spec.name]} in the same directory; this one is ignored",
                )
            )
            continue
        names_in_layer[spec.name] = path
        previous = catalog.agents.get(spec.name)
        if previous is not None:
            catalog.problems.append(
                Problem(path, "warning", f"overrides agent {spec.name!r} from {previous.source} ({previous.layer})")
            )
            spec = spec.model_copy(update={"shadows": previous.layer})
        catalog.agents[spec.name] = spec
