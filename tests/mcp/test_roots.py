"""The client's roots: used as given by a local stdio client, only narrowing the server's roots otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp.types import ListRootsResult, Root

from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, text, tool_use
from subagents.roots import effective_roots
from tests.answers import review_json
from tests.conftest import make_app

pytestmark = pytest.mark.anyio
both_eras = pytest.mark.parametrize("mode", ["legacy", "auto"])


def roots_callback(*paths: Path):  # type: ignore[no-untyped-def]
    async def callback(_ctx: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=p.as_uri(), name=p.name) for p in paths])  # type: ignore[arg-type]

    return callback


def test_policy(tmp_path: Path) -> None:
    base, inner, other = tmp_path, tmp_path / "a", Path("/usr")
    inner.mkdir()
    assert effective_roots([base], [], trust_client=False) == (base,)
    assert effective_roots([base], [inner, other], trust_client=False) == (inner,)  # narrowed, never widened
    assert effective_roots([base], [other], trust_client=False) == (base,)
    assert effective_roots([base], [other], trust_client=True) == (other.resolve(),)


@both_eras
async def test_client_roots_narrow_an_explicit_root(mode: str, fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script(
        [
            tool_use("Read", {"file_path": str(project / "README.md")}),
            tool_use("Read", {"file_path": "app.py"}),
            text(review_json("done")),
        ]
    )
    async with (
        make_app(fake_model, project) as app,
        Client(build_server(app), mode=mode, list_roots_callback=roots_callback(project / "src")) as client,
    ):
        result = await client.call_tool("security-reviewer", {"task": "x"})
    assert result.is_error is False
    outside, inside = (r.tool_results[0] for r in fake_model.requests[1:])
    assert outside["is_error"] and "outside" in outside["content"]
    assert not inside["is_error"] and "SELECT * FROM users" in inside["content"]


@both_eras
async def test_a_local_stdio_client_names_the_roots(
    mode: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    fake_model.set_script([tool_use("Read", {"file_path": "src/app.py"}), text(review_json("done"))])
    async with (
        make_app(fake_model, elsewhere, roots=()) as app,
        Client(build_server(app), mode=mode, list_roots_callback=roots_callback(project)) as client,
    ):
        await client.call_tool("security-reviewer", {"task": "x"})
    [read] = fake_model.requests[1].tool_results
    assert not read["is_error"] and "SELECT * FROM users" in read["content"]


@both_eras
async def test_without_client_roots_the_server_roots_apply(
    mode: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script([tool_use("Read", {"file_path": "src/app.py"}), text(review_json("done"))])
    async with make_app(fake_model, project) as app, Client(build_server(app), mode=mode) as client:
        await client.call_tool("security-reviewer", {"task": "x"})
    assert not fake_model.requests[1].tool_results[0]["is_error"]


@both_eras
async def test_roots_are_asked_on_every_call_so_changes_are_followed(
    mode: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.py").write_text("OTHER = 1\n")
    current = [project]

    async def callback(_ctx: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=p.as_uri(), name=p.name) for p in current])  # type: ignore[arg-type]

    fake_model.set_script(
        [
            tool_use("Read", {"file_path": "src/app.py"}),
            text(review_json("one")),
            tool_use("Read", {"file_path": "b.py"}),
            text(review_json("two")),
        ]
    )
    async with (
        make_app(fake_model, tmp_path, roots=()) as app,
        Client(build_server(app), mode=mode, list_roots_callback=callback) as client,
    ):
        await client.call_tool("security-reviewer", {"task": "x"})
        current[:] = [other]  # the user adds another folder to the session
        await client.call_tool("security-reviewer", {"task": "y"})
    first, second = fake_model.requests[1].tool_results[0], fake_model.requests[3].tool_results[0]
    assert "SELECT" in first["content"] and "OTHER = 1" in second["content"]
