"""Which folders and files Claude Code 2.1.330 reads agents from (observed: claude_code_cases.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from subagents.definitions.catalog import Layer, default_layers, load_catalog
from subagents.definitions.discovery import project_agent_dirs, scan_agent_files
from tests.conftest import write_agent


def repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def test_every_agents_folder_up_to_the_repository_root_closest_last(tmp_path: Path) -> None:
    root = repo(tmp_path / "R")
    start = root / "pkg" / "src"
    dirs = project_agent_dirs(start, home=tmp_path / "home")
    assert dirs == [root / ".claude/agents", root / "pkg/.claude/agents", start / ".claude/agents"]


def test_a_nested_repository_is_its_own_root(tmp_path: Path) -> None:
    """From inside `R/sub` (its own git repository) Claude Code listed only R/sub's agents."""
    repo(tmp_path / "R")
    sub = repo(tmp_path / "R" / "sub")
    assert project_agent_dirs(sub / "x", home=tmp_path / "home") == [sub / ".claude/agents", sub / "x/.claude/agents"]


def test_outside_a_repository_the_walk_goes_to_the_filesystem_root(tmp_path: Path) -> None:
    start = tmp_path / "N" / "a" / "b"
    dirs = project_agent_dirs(start, home=tmp_path / "home")
    assert dirs[0] == Path("/.claude/agents") and dirs[-1] == start / ".claude/agents"
    assert tmp_path / "N" / ".claude/agents" in dirs


def test_the_walk_stops_below_the_home_folder(tmp_path: Path) -> None:
    """Claude Code did not list an agent from the folder above HOME, from HOME/proj/x (no repository)."""
    home = tmp_path / "home"
    assert project_agent_dirs(home / "proj" / "x", home=home) == [
        home / "proj/.claude/agents",
        home / "proj/x/.claude/agents",
    ]
    assert project_agent_dirs(home, home=home) == []


def test_from_a_subfolder_the_repositorys_agents_load_and_the_closest_wins(tmp_path: Path) -> None:
    root = repo(tmp_path / "R")
    write_agent(root / ".claude/agents", "s.md", "name: shared\ndescription: from the root")
    write_agent(root / ".claude/agents", "r.md", "name: root-only\ndescription: d")
    write_agent(root / "pkg/.claude/agents", "s.md", "name: shared\ndescription: from pkg")
    write_agent(tmp_path / ".claude/agents", "o.md", "name: outside\ndescription: above the repository")
    catalog = load_catalog(default_layers(project_dir=root / "pkg" / "src", bundled=False, home=tmp_path / "h"))
    assert sorted(catalog.agents) == ["root-only", "shared"]
    assert catalog.agents["shared"].description == "from pkg" and catalog.agents["shared"].shadows == "project"
    assert any("overrides agent 'shared'" in p.message for p in catalog.problems)


def test_symlinked_folders_and_files_are_followed_and_a_loop_ends(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    write_agent(tmp_path / "collection" / "team", "c.md", "name: from-collection\ndescription: d")
    target = write_agent(tmp_path, "target.md", "name: linked-file\ndescription: d")
    agents.mkdir()
    os.symlink("../collection", agents / "linked")
    os.symlink(".", agents / "loop")
    os.symlink("../target.md", agents / "link.md")
    os.symlink(target, agents / "again.md")  # the same file twice
    os.symlink("missing.md", agents / "broken.md")
    scan = scan_agent_files(agents)
    assert [p.relative_to(agents) for p in scan.files] == [Path("again.md"), Path("linked/team/c.md")]
    problems = {(p.path.name, p.level): p.message for p in scan.problems}
    assert problems[("loop", "info")] == "a folder already scanned through another path (a link)"
    assert problems[("link.md", "info")] == f"the same file as {agents / 'again.md'} (a link); loaded once"
    assert problems[("broken.md", "warning")] == "a broken symlink; nothing to load"


def test_a_symlinked_agents_folder_loads(tmp_path: Path) -> None:
    """Claude Code listed the agents of `.claude/agents -> ../../collection`."""
    root = repo(tmp_path / "proj")
    write_agent(tmp_path / "collection", "c.md", "name: from-collection\ndescription: d")
    (root / ".claude").mkdir()
    os.symlink("../../collection", root / ".claude" / "agents")
    catalog = load_catalog(default_layers(project_dir=root, bundled=False, home=tmp_path / "h"))
    assert list(catalog.agents) == ["from-collection"]


def test_only_files_ending_in_md_count(tmp_path: Path) -> None:
    write_agent(tmp_path, "a.MD", "name: upper\ndescription: d")
    write_agent(tmp_path, "a.markdown", "name: long\ndescription: d")
    os.mkfifo(tmp_path / "fifo.md")  # never opened: it would block
    assert scan_agent_files(tmp_path).files == []


def test_files_come_in_path_order_as_claude_code_sorts_them(tmp_path: Path) -> None:
    for rel in ("a/x.md", "a-b/x.md", "a.md", "B.md"):
        write_agent(tmp_path / Path(rel).parent, Path(rel).name, "name: n\ndescription: d")
    assert [str(p.relative_to(tmp_path)) for p in scan_agent_files(tmp_path).files] == [
        "B.md",
        "a-b/x.md",
        "a.md",
        "a/x.md",
    ]


def test_readmes_are_listed_as_not_agents_and_do_not_count_as_errors(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Our agents\n")
    write_agent(tmp_path, "a.md", "name: a\ndescription: d")
    catalog = load_catalog([Layer("project", tmp_path)])
    assert catalog.errors == [] and list(catalog.agents) == ["a"]
    [info] = catalog.problems
    assert (info.level, info.path.name) == ("info", "README.md") and info.message.startswith("not an agent file")
