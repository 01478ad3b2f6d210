"""Our loader against the record of what Claude Code 2.1.330 loads (claude_code_cases.py).

Every file Claude Code lists loads here with the same name and description, every file it skips is not
served here, and the two differences are on purpose: a CRLF file Claude Code fails to repair loads here
(with a warning that says Claude Code skips it), and a blank description is refused here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from subagents.definitions.catalog import Catalog, default_layers, load_catalog
from tests.definitions.claude_code_cases import CASES, RUN_FROM, Case, build_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Catalog]:
    base = tmp_path_factory.mktemp("parity")
    start = build_project(base)
    home = base / "home"
    return base, load_catalog(default_layers(project_dir=start, bundled=False, home=home))


def served(catalog: Catalog, base: Path, item: Case) -> str | None:
    """The `name: description` we serve for the case's file, or None."""
    source = base / item.path
    for spec in catalog.agents.values():
        if spec.source is not None and spec.source.resolve() == source.resolve():
            return f"{spec.agent_name}: {spec.description}"
    return None


def head(listed: str) -> str:
    """`name: description` of a Claude Code line, without its `(Tools: ...)`; we strip descriptions."""
    name, description = listed.rsplit(" (Tools: ", 1)[0].split(": ", 1)
    return f"{name}: {description.strip()}"


@pytest.mark.parametrize("item", CASES, ids=[c.path.removeprefix("R/.claude/agents/") for c in CASES])
def test_each_file_loads_as_in_claude_code(project: tuple[Path, Catalog], item: Case) -> None:
    base, catalog = project
    ours = served(catalog, base, item)
    if item.ours == "rejects":
        assert ours is None and any(p.level == "error" for p in catalog.problems if p.path == base / item.path)
    elif item.ours == "loads":
        assert ours is not None
    elif item.listed is None:
        assert ours is None, item.rule
    else:
        assert ours == head(item.listed), item.rule


def test_the_whole_catalog_is_claude_codes(project: tuple[Path, Catalog]) -> None:
    _, catalog = project
    ours = {f"{s.agent_name}: {s.description}" for s in catalog.agents.values()}
    theirs = {head(c.listed) for c in CASES if c.listed is not None and c.ours == "same"}
    deliberate = {
        f"{c.path.rsplit('/', 1)[1].removesuffix('.md')}: Use when: asked" for c in CASES if c.ours == "loads"
    }
    assert ours == theirs | deliberate


def test_the_deliberate_differences_say_so(project: tuple[Path, Catalog]) -> None:
    base, catalog = project
    crlf = [p.message for p in catalog.problems if p.path.name == "colon-crlf.md"]
    assert len(crlf) == 1 and crlf[0].startswith("repaired:") and "Claude Code" in crlf[0] and "skips" in crlf[0]
    blank = [p for p in catalog.problems if p.path.name == "blank.md"]
    assert [p.level for p in blank] == ["error"] and "blank" in blank[0].message


def test_run_from_a_subfolder_of_the_repository(project: tuple[Path, Catalog]) -> None:
    base, catalog = project
    assert RUN_FROM.startswith("R/pkg/")
    layers = [layer.path for layer in catalog.layers if layer.label == "project"]
    assert layers[:2] == [base / "R" / ".claude" / "agents", base / "R" / "pkg" / ".claude" / "agents"]
    assert all(not str(p).startswith(str(base / ".claude")) for p in layers)
