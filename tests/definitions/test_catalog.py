"""Layered agent directories: bundled < user < project < each --agents-dir."""

from __future__ import annotations

from pathlib import Path

from subagents.definitions.catalog import Layer, bundled_agents_dir, default_layers, load_catalog
from tests.conftest import write_agent


def test_higher_layer_wins_and_the_override_is_reported(tmp_path: Path) -> None:
    low, high = tmp_path / "low", tmp_path / "high"
    write_agent(low, "r.md", "name: reviewer\ndescription: low")
    write_agent(high, "r.md", "name: reviewer\ndescription: high")
    catalog = load_catalog([Layer("user", low), Layer("project", high)])
    assert catalog.agents["reviewer"].description == "high"
    assert catalog.agents["reviewer"].layer == "project"
    assert any("overrides agent 'reviewer'" in p.message and str(low / "r.md") in p.message for p in catalog.problems)


def test_a_broken_file_does_not_stop_the_others(tmp_path: Path) -> None:
    write_agent(tmp_path, "good.md", "name: good\ndescription: fine")
    write_agent(tmp_path, "bad.md", "name: bad")
    catalog = load_catalog([Layer("project", tmp_path)])
    assert list(catalog.agents) == ["good"]
    assert [(p.path.name, p.level) for p in catalog.errors] == [("bad.md", "error")]


def test_directories_are_scanned_recursively_hidden_ones_too(tmp_path: Path) -> None:
    """Claude Code listed agents from `.hidden.md` and `.hidden-folder/x.md` (claude_code_cases.py)."""
    write_agent(tmp_path / "team" / "sec", "s.md", "name: nested\ndescription: d")
    write_agent(tmp_path / ".trash", "t.md", "name: hidden\ndescription: d")
    write_agent(tmp_path, ".dot.md", "name: dotfile\ndescription: d")
    assert sorted(load_catalog([Layer("project", tmp_path)]).agents) == ["dotfile", "hidden", "nested"]


def test_same_name_twice_in_one_directory_keeps_the_later_path_and_names_both(tmp_path: Path) -> None:
    """Claude Code kept `dup-b.md` over `dup-a.md` and reported both paths in its debug log."""
    first = write_agent(tmp_path, "a.md", "name: dup\ndescription: first")
    second = write_agent(tmp_path / "z", "b.md", "name: dup\ndescription: second")
    catalog = load_catalog([Layer("project", tmp_path)])
    assert catalog.agents["dup"].description == "second"
    [warning] = [p for p in catalog.problems if p.level == "warning"]
    assert warning.path == first and f"defined again in {second}" in warning.message
    assert "this one is ignored" in warning.message and "later path in sorted order wins" in warning.message


def test_default_layer_order(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    layers = default_layers(project_dir=tmp_path / "proj", extra_dirs=[extra], home=tmp_path / "home")
    labels = [layer.label for layer in layers]
    assert labels[:2] == ["bundled", "user"] and labels[-1] == "agents-dir" and set(labels[2:-1]) == {"project"}
    assert layers[1].path == tmp_path / "home" / ".claude" / "agents"
    assert layers[-2].path == tmp_path / "proj" / ".claude" / "agents"  # the closest project folder is highest


def test_no_bundled_leaves_the_bundled_layer_out(tmp_path: Path) -> None:
    layers = default_layers(project_dir=None, bundled=False, home=tmp_path)
    assert [layer.label for layer in layers] == ["user"]


def test_a_directory_named_twice_loads_once_at_its_highest_layer(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    layers = default_layers(
        project_dir=proj, extra_dirs=[proj / ".claude" / "agents"], home=tmp_path / "h", bundled=False
    )
    assert [layer.label for layer in layers if layer.path.is_relative_to(proj)] == ["agents-dir"]


def test_missing_required_directory_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    catalog = load_catalog([Layer("agents-dir", missing)], require_dirs=[missing])
    assert catalog.errors and "does not exist" in catalog.errors[0].message


def test_bundled_agents_are_the_four_specialists() -> None:
    catalog = load_catalog([Layer("bundled", bundled_agents_dir())])
    assert catalog.errors == []
    assert sorted(catalog.agents) == ["debate-judge", "router", "security-reviewer", "test-writer"]
    for spec in catalog.agents.values():
        assert len(spec.description) < 2000 and spec.prompt
