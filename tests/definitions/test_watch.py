"""Which folders live reload watches: each folder on its own, links followed as discovery follows them, and
never more than MAX_WATCHED, however far a link planted in a repository's agents folder points."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from subagents.definitions import watch
from subagents.definitions.watch import MAX_WATCHED, watched_tree


def test_every_folder_once_links_followed_and_a_loop_ends(tmp_path: Path) -> None:
    agents, shared = tmp_path / "agents", tmp_path / "shared"
    (agents / "team" / "deep").mkdir(parents=True)
    (shared / "more").mkdir(parents=True)
    (agents / "linked").symlink_to(shared)
    (shared / "loop").symlink_to(agents)  # back to the top: watched once, not walked again
    folders, cut = watched_tree([agents])
    assert not cut
    assert sorted(os.path.realpath(f) for f in folders) == sorted(
        os.path.realpath(p) for p in (agents, agents / "team", agents / "team" / "deep", shared, shared / "more")
    )


def test_a_link_to_a_big_tree_is_cut_at_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "evil").symlink_to("/usr")  # as a hostile repository would plant it (or /)
    folders, cut = watched_tree([agents])
    assert cut and len(folders) == MAX_WATCHED
    monkeypatch.setattr(watch, "MAX_WATCHED", 3)
    assert len(watched_tree([agents])[0]) == 3
