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


def test_directories_are_scanned_recursively_and_hidden_ones_skipped(tmp_path: Path) -> None:
    write_agent(tmp_path / "team" / "sec", "s.md", "name: nested\ndescription: d")
    write_agent(tmp_path / ".trash", "t.md", "name: hidden\ndescription: d")
    assert list(load_catalog([Layer("project", tmp_path)]).agents) == ["nested"]


def test_same_name_twice_in_one_directory_keeps_the_first_and_says_so(tmp_path: Path) -> None:
    write_agent(tmp_path, "a.md", "name: dup\ndescription: first")
    write_agent(tmp_path, "b.md", "name: dup\ndescription: second")
    catalog = load_catalog([Layer("project", tmp_path)])
    assert catalog.agents["dup"].description == "first"
    assert any("also defined in" in p.message for p in catalog.problems)


def test_default_layer_order(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    layers = default_layers(project_dir=tmp_path / "proj", extra_dirs=[extra], home=tmp_path / "home")
    assert [layer.label for layer in layers] == ["bundled", "user", "project", "agents-dir"]
    assert layers[1].path == tmp_path / "home" / ".claude" / "agents"
    assert layers[2].path == tmp_path / "proj" / ".claude" / "agents"


def test_no_bundled_leaves_the_bundled_layer_out(tmp_path: Path) -> None:
    layers = default_layers(project_dir=None, bundled=False, home=tmp_path)
    assert [layer.label for layer in layers] == ["user"]


def test_a_directory_named_twice_loads_once_at_its_highest_layer(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    layers = default_layers(
        project_dir=proj, extra_dirs=[proj / ".claude" / "agents"], home=tmp_path / "h", bundled=False
    )
    assert [layer.label for layer in layers] == ["user", "agents-dir"]


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
