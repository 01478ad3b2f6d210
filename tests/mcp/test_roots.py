"""The client's roots: used as given by a local stdio client, only narrowing the server's roots otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.types import ListRootsResult, Root

from subagents.providers.testing import FakeMessagesServer, text, tool_use
from subagents.roots import effective_roots
from subagents.testing import ServerFactory, both_eras, client_roots, files_read, refused
from tests.answers import review_json

pytestmark = [pytest.mark.anyio, pytest.mark.subagents(bundled=True, store=False)]


def test_policy(tmp_path: Path) -> None:
    base, inner, other = tmp_path, tmp_path / "a", Path("/usr")
    inner.mkdir()
    assert effective_roots([base], [], trust_client=False) == (base,)
    assert effective_roots([base], [inner, other], trust_client=False) == (inner,)  # narrowed, never widened
    assert effective_roots([base], [other], trust_client=False) == (base,)
    assert effective_roots([base], [other], trust_client=True) == (other.resolve(),)


@both_eras
async def test_client_roots_narrow_an_explicit_root(
    mcp_mode: str, fake_model: FakeMessagesServer, subagents_server: ServerFactory, project: Path
) -> None:
    fake_model.set_script(
        [
            tool_use("Read", {"file_path": str(project / "README.md")}),
            tool_use("Read", {"file_path": "app.py"}),
            text(review_json("done")),
        ]
    )
    server = subagents_server(roots=project)
    async with server.client(mcp_mode, list_roots_callback=client_roots(project / "src")) as client:
        result = await client.call_tool("security-reviewer", {"task": "x"})
    assert result.is_error is False
    [outside] = refused(fake_model)
    assert outside.input == {"file_path": str(project / "README.md")} and "outside" in (outside.result or "")
    assert files_read(fake_model) == ["app.py"]
    inside = fake_model.requests[2].tool_results[0]
    assert not inside["is_error"] and "SELECT * FROM users" in inside["content"]


@both_eras
async def test_a_local_stdio_client_names_the_roots(
    mcp_mode: str, fake_model: FakeMessagesServer, subagents_server: ServerFactory, project: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    fake_model.set_script([tool_use("Read", {"file_path": "src/app.py"}), text(review_json("done"))])
    server = subagents_server(roots=(), project_dir=elsewhere)
    async with server.client(mcp_mode, list_roots_callback=client_roots(project)) as client:
        await client.call_tool("security-reviewer", {"task": "x"})
    [read] = fake_model.requests[1].tool_results
    assert not read["is_error"] and "SELECT * FROM users" in read["content"]


@both_eras
async def test_without_client_roots_the_server_roots_apply(
    mcp_mode: str, fake_model: FakeMessagesServer, subagents_server: ServerFactory, project: Path
) -> None:
    fake_model.set_script([tool_use("Read", {"file_path": "src/app.py"}), text(review_json("done"))])
    async with subagents_server(roots=project).client(mcp_mode) as client:
        await client.call_tool("security-reviewer", {"task": "x"})
    assert files_read(fake_model) == ["src/app.py"] and not refused(fake_model)


@both_eras
async def test_roots_are_asked_on_every_call_so_changes_are_followed(
    mcp_mode: str, fake_model: FakeMessagesServer, subagents_server: ServerFactory, project: Path, tmp_path: Path
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
    server = subagents_server(roots=(), project_dir=tmp_path)
    async with server.client(mcp_mode, list_roots_callback=callback) as client:
        await client.call_tool("security-reviewer", {"task": "x"})
        current[:] = [other]  # the user adds another folder to the session
        await client.call_tool("security-reviewer", {"task": "y"})
    first, second = fake_model.requests[1].tool_results[0], fake_model.requests[3].tool_results[0]
    assert "SELECT" in first["content"] and "OTHER = 1" in second["content"]
