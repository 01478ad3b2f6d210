"""Reading the agent folders again (a live reload): the same rules as at start-up, and a broken file keeps
its last good agent."""

from __future__ import annotations

from pathlib import Path

from subagents.definitions.catalog import Layer, load_catalog, select_agents
from subagents.definitions.loader import MAX_FILE_BYTES
from subagents.definitions.reload import reload_catalog
from tests.conftest import write_agent


def layers(*folders: Path) -> list[Layer]:
    return [Layer("agents-dir", folder) for folder in folders]


def agent(folder: Path, name: str, description: str = "Reviews code.") -> Path:
    return write_agent(folder, f"{name}.md", f"name: {name}\ndescription: {description}\ntools: Read")


def test_added_changed_and_removed_agents_are_named(tmp_path: Path) -> None:
    agent(tmp_path, "stays")
    agent(tmp_path, "edited", "Version one.")
    gone = agent(tmp_path, "gone")
    before = load_catalog(layers(tmp_path))
    agent(tmp_path, "edited", "Version two.")
    agent(tmp_path, "new")
    gone.unlink()
    result = reload_catalog(before)
    assert (result.added, result.changed, result.removed) == (("new",), ("edited",), ("gone",))
    assert result.catalog.agents["edited"].description == "Version two."
    assert result.summary() == "added new; changed edited; removed gone"
    assert not reload_catalog(result.catalog).any_change


def test_a_file_that_breaks_keeps_its_last_good_agent_and_says_so_once(tmp_path: Path) -> None:
    path = agent(tmp_path, "reviewer", "Version one.")
    before = load_catalog(layers(tmp_path))
    path.write_text("---\nname: reviewer\n---\nno description\n", encoding="utf-8")
    result = reload_catalog(before)
    assert not result.any_change
    assert result.catalog.agents["reviewer"].description == "Version one."
    [problem] = result.new_problems
    assert problem.level == "error" and problem.path == path
    assert "still serving the last good version of agent 'reviewer' until the file is fixed" in problem.message
    assert reload_catalog(result.catalog).new_problems == ()  # said once, not on every reload
    agent(tmp_path, "reviewer", "Version three.")
    fixed = reload_catalog(result.catalog)
    assert fixed.changed == ("reviewer",) and not fixed.catalog.errors


def test_a_file_that_never_loaded_serves_nothing(tmp_path: Path) -> None:
    before = load_catalog(layers(tmp_path))
    write_agent(tmp_path, "broken.md", "name: broken\ntools: Read")
    result = reload_catalog(before)
    assert "broken" not in result.catalog.agents and result.catalog.errors


def test_a_reloaded_file_meets_the_start_up_limits(tmp_path: Path) -> None:
    path = agent(tmp_path, "reviewer", "Version one.")
    before = load_catalog(layers(tmp_path))
    path.write_text("---\nname: reviewer\ndescription: huge\n---\n" + "x" * MAX_FILE_BYTES, encoding="utf-8")
    write_agent(tmp_path, "own-tool.md", "name: delegate\ndescription: Takes a server tool's name.")
    result = reload_catalog(before)
    assert result.catalog.agents["reviewer"].description == "Version one."
    assert any("larger than 1 MiB" in p.message for p in result.new_problems)
    taken = next(s for s in result.catalog.agents.values() if s.agent_name == "delegate")
    assert taken.name != "delegate"  # a server tool's name stays the server's


def test_the_agents_selection_holds_on_a_reload(tmp_path: Path) -> None:
    agent(tmp_path, "py-lint")
    before = select_agents(load_catalog(layers(tmp_path)), ["py-*"])
    agent(tmp_path, "py-types")
    agent(tmp_path, "js-lint")
    result = reload_catalog(before, ["py-*"])
    assert sorted(result.catalog.agents) == ["py-lint", "py-types"]


def test_a_higher_layer_added_later_overrides_and_is_marked(tmp_path: Path) -> None:
    low, high = tmp_path / "low", tmp_path / "high"
    agent(low, "reviewer", "The low one.")
    high.mkdir()
    before = load_catalog(layers(low, high))
    agent(high, "reviewer", "The high one.")
    result = reload_catalog(before)
    spec = result.catalog.agents["reviewer"]
    assert spec.description == "The high one." and spec.shadows == "agents-dir"
