"""The client's roots: used as given by a local stdio client, only narrowing the server's roots otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.types import ClientCapabilities, ListRootsResult, Root, RootsCapability

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


class ChangingRoots:
    """A client's roots that the test changes between calls; counts how often the server asked."""

    def __init__(self, *paths: Path) -> None:
        self.current = list(paths)
        self.asked = 0

    async def __call__(self, _ctx: object) -> ListRootsResult:
        self.asked += 1
        return ListRootsResult(roots=[Root(uri=p.as_uri(), name=p.name) for p in self.current])  # type: ignore[arg-type]


def two_reads(fake_model: FakeMessagesServer, first: str, second: str) -> None:
    fake_model.set_script(
        [
            tool_use("Read", {"file_path": first}),
            text(review_json("one")),
            tool_use("Read", {"file_path": second}),
            text(review_json("two")),
        ]
    )


def read_results(fake_model: FakeMessagesServer) -> tuple[str, str]:
    return fake_model.requests[1].tool_results[0]["content"], fake_model.requests[3].tool_results[0]["content"]


@pytest.fixture
def other(tmp_path: Path) -> Path:
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.py").write_text("OTHER = 1\n")
    return other


async def test_roots_are_kept_until_the_client_says_they_changed(
    fake_model: FakeMessagesServer, subagents_server: ServerFactory, project: Path, other: Path, tmp_path: Path
) -> None:
    """A handshake-era client that declares roots.listChanged (the official client, Claude Code) is asked once;
    its roots/list_changed makes the very next call ask again and use the new roots, never the kept ones."""
    roots = ChangingRoots(project)
    fake_model.set_script(
        [
            tool_use("Read", {"file_path": "src/app.py"}),
            text(review_json("one")),
            tool_use("Read", {"file_path": "src/app.py"}),
            text(review_json("two")),
            tool_use("Read", {"file_path": "src/app.py"}),
            text(review_json("three")),
        ]
    )
    server = subagents_server(roots=(), project_dir=tmp_path)
    async with server.client("legacy", list_roots_callback=roots) as client:
        await client.call_tool("security-reviewer", {"task": "x"})
        await client.call_tool("security-reviewer", {"task": "y"})
        assert roots.asked == 1  # the second call used the kept answer
        roots.current[:] = [other]  # the user swaps the folder: the project is no longer a root
        await client.send_roots_list_changed()
        await client.call_tool("security-reviewer", {"task": "z"})
    assert roots.asked == 2
    first, second, third = (fake_model.requests[i].tool_results[0] for i in (1, 3, 5))
    assert "SELECT" in first["content"] and "SELECT" in second["content"]
    assert third["is_error"] and "SELECT" not in third["content"]  # the old root is gone at once


async def test_an_answer_that_crossed_a_list_changed_is_not_kept(
    fake_model: FakeMessagesServer, subagents_server: ServerFactory, project: Path, other: Path, tmp_path: Path
) -> None:
    """The client announces a change while the server waits for its answer: that answer may be from before
    the change, so the next call asks again."""
    roots = ChangingRoots(project)
    client_box: list[Any] = []

    async def announcing(ctx: object) -> ListRootsResult:
        answer = await roots(ctx)
        if roots.asked == 1:
            roots.current[:] = [other]
            await client_box[0].send_roots_list_changed()
        return answer

    two_reads(fake_model, "src/app.py", "b.py")
    server = subagents_server(roots=(), project_dir=tmp_path)
    async with server.client("legacy", list_roots_callback=announcing) as client:
        client_box.append(client)
        await client.call_tool("security-reviewer", {"task": "x"})
        await client.call_tool("security-reviewer", {"task": "y"})
    first, second = read_results(fake_model)
    assert roots.asked == 2 and "SELECT" in first and "OTHER = 1" in second


@both_eras
async def test_roots_are_asked_on_every_call_when_the_client_cannot_announce_changes(
    mcp_mode: str,
    fake_model: FakeMessagesServer,
    subagents_server: ServerFactory,
    project: Path,
    other: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without roots.listChanged (Claude Code 2.1.197 declares `roots: {}`), and on 2026-07-28, which has no
    client notifications, nothing would tell the server of a change, so every call asks."""
    build = ClientSession._build_capabilities

    def without_list_changed(self: ClientSession, version: str) -> ClientCapabilities:
        caps = build(self, version)
        return caps.model_copy(update={"roots": RootsCapability()})

    if mcp_mode == "legacy":
        monkeypatch.setattr(ClientSession, "_build_capabilities", without_list_changed)
    roots = ChangingRoots(project)
    two_reads(fake_model, "src/app.py", "b.py")
    server = subagents_server(roots=(), project_dir=tmp_path)
    async with server.client(mcp_mode, list_roots_callback=roots) as client:
        await client.call_tool("security-reviewer", {"task": "x"})
        roots.current[:] = [other]  # the user adds another folder to the session, unannounced
        await client.call_tool("security-reviewer", {"task": "y"})
    first, second = read_results(fake_model)
    assert roots.asked == 2 and "SELECT" in first and "OTHER = 1" in second
