"""Principals over HTTP, against real `subagents serve` processes: each token's holder sees, cancels and
continues only its own runs, and another principal's run answers byte for byte like an unknown id.
The tokens file is read again on SIGHUP; no token ever reaches the log."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client, MCPError
from mcp.server.auth.provider import AccessToken
from mcp.types import CallToolResult

from subagents.history.store import RunInput, RunRecord, store_for
from subagents.mcp.http import HttpSecurity, build_http_app, uvicorn_config, verifier_for
from subagents.mcp.server import build_server
from subagents.providers.testing import text
from subagents.tokens import new_token, token_line
from tests.answers import review_json
from tests.conftest import make_app, model_env
from tests.helpers import SUBAGENTS, child_env, http_server, run_cli
from tests.mcp.test_run_caps import INIT, MCP_HEADERS, HeldReplies, client_of, until_finished, wait_for

pytestmark = pytest.mark.anyio

AGENT = "security-reviewer"
UNKNOWN = "run_0123456789ab"  # as long as a real run id, so the two answers can be the same length


def tokens_file(path: Path, **tokens: str) -> Path:
    path.write_text("# principals of this server\n" + "".join(f"{token_line(n, t)}\n" for n, t in tokens.items()))
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def shown(result: CallToolResult, run_id: str) -> str:
    """Everything a client receives from a tool call, with the run id it asked about blanked out."""
    payload = {
        "is_error": result.is_error,
        "content": [c.model_dump(mode="json") for c in result.content],
        "structured": result.structured_content,
    }
    return json.dumps(payload, sort_keys=True).replace(run_id, "<id>")


async def resource_error(client: Client, run_id: str) -> str:
    with pytest.raises(MCPError) as refused:
        await client.read_resource(f"subagents://runs/{run_id}")
    return json.dumps(refused.value.error.model_dump(mode="json"), sort_keys=True).replace(run_id, "<id>")


async def stored(location: str, run_id: str) -> RunRecord:
    async with store_for(location) as store:
        return await store.get(run_id)


async def attempts(client: Client, run_id: str) -> dict[str, str]:
    """What a principal hears when it reads, cancels, continues and opens a run."""
    return {
        "get_run": shown(await client.call_tool("get_run", {"run_id": run_id}), run_id),
        "cancel_run": shown(await client.call_tool("cancel_run", {"run_id": run_id}), run_id),
        "continue_run": shown(await client.call_tool("continue_run", {"run_id": run_id, "message": "go on"}), run_id),
        "resource": await resource_error(client, run_id),
    }


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_alice_cannot_see_cancel_or_continue_bobs_run_and_it_looks_like_an_unknown_id(
    mode: str, store_location: str, fake_model: Any, project: Path, tmp_path: Path
) -> None:
    held = HeldReplies()
    fake_model.set_script(held)
    alice, bob = new_token(), new_token()
    tokens = tokens_file(tmp_path / "tokens", alice=alice, bob=bob)
    args = ("--root", str(project), "--store", store_location, "--auth-tokens", str(tokens))
    with http_server(*args, env=model_env(fake_model)) as (url, proc):
        try:
            async with client_of(url, mode, bearer(bob)) as as_bob, client_of(url, mode, bearer(alice)) as as_alice:
                started = await as_bob.call_tool("start_agent", {"agent": AGENT, "task": "review bob's code"})
                assert started.structured_content is not None
                run_id = started.structured_content["run_id"]
                await wait_for(lambda: len(fake_model.requests) == 1)  # bob's run waits on the model
                while_running = await attempts(as_alice, run_id)
                unknown_while_running = await attempts(as_alice, UNKNOWN)
                bob_sees = await as_bob.call_tool("get_run", {"run_id": run_id})
                held.release()
                finished = await until_finished(as_bob, run_id)
                after = await attempts(as_alice, run_id)
                unknown_after = await attempts(as_alice, UNKNOWN)
                alice_lists = json.loads((await as_alice.read_resource("subagents://runs")).contents[0].text)  # type: ignore[union-attr]
                bob_continues = await as_bob.call_tool("continue_run", {"run_id": run_id, "message": "quick: and?"})
                bob_lists = json.loads((await as_bob.read_resource("subagents://runs")).contents[0].text)  # type: ignore[union-attr]
        finally:
            held.release()
    assert while_running == unknown_while_running  # byte for byte, every attempt
    assert after == unknown_after
    assert json.loads(after["get_run"])["structured"] == {
        "status": "error",
        "error": "No run with id '<id>' in the run store. See recent runs with `subagents runs list`.",
    }
    assert bob_sees.structured_content is not None and bob_sees.structured_content["status"] == "running"
    assert finished["status"] == "completed"  # alice's cancel did not stop it
    assert len(fake_model.requests) == 2  # alice's continue_run never reached the model; bob's did
    assert "go on" not in json.dumps([r.messages for r in fake_model.requests])
    assert bob_continues.is_error is False
    assert alice_lists == []
    assert [r["id"] for r in bob_lists] == [bob_continues.structured_content["run_id"], run_id]  # type: ignore[index]
    record = await stored(store_location, run_id)
    assert (record.principal, record.status) == ("bob", "completed")
    assert proc.stderr is not None and alice not in proc.stderr.read() and bob not in proc.stderr.read()


async def test_the_tokens_file_is_read_again_on_sighup_and_a_broken_one_keeps_the_old_tokens(
    fake_model: Any, project: Path, tmp_path: Path
) -> None:
    alice, carol = new_token(), new_token()
    tokens = tokens_file(tmp_path / "tokens", alice=alice)

    async def status_of(token: str) -> int:
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(url, json=INIT, headers=MCP_HEADERS | bearer(token))
            return response.status_code

    async def after_sighup(token: str, wanted: int) -> int:
        proc.send_signal(signal.SIGHUP)
        with anyio.fail_after(10):
            while (status := await status_of(token)) != wanted:
                await anyio.sleep(0.05)
        return status

    with http_server("--root", str(project), "--auth-tokens", str(tokens), env=model_env(fake_model)) as (url, proc):
        before = (await status_of(alice), await status_of(carol))
        tokens_file(tokens, alice=alice, carol=carol)
        await after_sighup(carol, 200)
        added = (await status_of(alice), await status_of(carol))
        tokens.write_text(f"{token_line('alice', alice)}\ncarol {carol}\n")  # a raw token pasted by mistake
        proc.send_signal(signal.SIGHUP)
        await anyio.sleep(0.5)
        kept = (await status_of(alice), await status_of(carol))
        tokens_file(tokens, carol=carol)  # alice's token revoked
        revoked = (await after_sighup(alice, 401), await status_of(carol))
        proc.terminate()
        _, log = proc.communicate(timeout=10)
    assert before == (200, 401)
    assert added == (200, 200)
    assert kept == (200, 200)
    assert revoked == (401, 200)
    assert f"Tokens file {tokens}, line 2: not `name: sha256:<64 hex digits>`" in log
    assert "Still using the 2 tokens read before." in log
    assert alice not in log and carol not in log  # not even the pasted one


def test_a_bad_tokens_file_stops_the_server_with_the_line_and_the_format(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    secret = new_token()
    tokens.write_text(f"# ok\nalice {secret}\n")
    result = run_cli("serve", "--transport", "http", "--port", "0", "--auth-tokens", str(tokens))
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        f"Tokens file {tokens}, line 2: not `name: sha256:<64 hex digits>` (make one with `subagents tokens new NAME`)."
    )
    assert secret not in result.stderr


def test_tokens_new_prints_the_token_once_and_a_line_that_holds_only_its_hash() -> None:
    made = run_cli("tokens", "new", "alice")
    token = made.stderr.strip().rsplit(" ", 1)[-1]
    hashed = subprocess.run(
        [*SUBAGENTS, "tokens", "hash", "alice"], input=f"{token}\n", capture_output=True, text=True, env=child_env()
    )
    assert made.returncode == 0 and hashed.returncode == 0
    assert made.stdout == hashed.stdout == token_line("alice", token) + "\n"
    assert token not in made.stdout
    assert made.stdout.startswith("alice: sha256:")


async def test_the_single_auth_token_is_the_principal_default(fake_model: Any, project: Path, tmp_path: Path) -> None:
    fake_model.set_script([text(review_json())])
    token, store = new_token(), str(tmp_path / "runs.db")
    env = model_env(fake_model) | {"SUBAGENTS_AUTH_TOKEN": token}
    with http_server("--root", str(project), "--store", store, env=env) as (url, _proc):
        async with client_of(url, "auto", bearer(token)) as client:
            result = await client.call_tool(AGENT, {"task": "review"})
    assert result.structured_content is not None
    record = await stored(store, result.structured_content["run_id"])
    assert record.principal == "default"


async def test_a_local_user_sees_every_run_in_its_store(fake_model: Any, project: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "runs.db")
    async with store_for(store) as opened:
        run_id = await opened.create_run(agent=AGENT, model="m", input=RunInput(task="t"), principal="alice")
    with http_server("--root", str(project), "--store", store, env=model_env(fake_model)) as (url, _proc):
        async with Client(url) as client:  # loopback without a token: the local user, as over stdio
            seen = await client.call_tool("get_run", {"run_id": run_id})
    assert seen.structured_content is not None and seen.structured_content["run_id"] == run_id


class SingleSignOn:
    """An embedder's verifier through the SDK's seam: one client id for everybody, a subject per person."""

    def __init__(self, people: dict[str, str]) -> None:
        self.people = people

    async def verify_token(self, token: str) -> AccessToken | None:
        subject = self.people.get(token)
        return None if subject is None else AccessToken(token=token, client_id="sso", subject=subject, scopes=[])


async def test_an_embedders_token_verifier_names_principals_by_subject_beside_the_tokens_file(
    fake_model: Any, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script([text(review_json())] * 2)
    alice, bob, carol = new_token(), new_token(), new_token()
    security = HttpSecurity(auth_tokens_file=tokens_file(tmp_path / "tokens", carol=carol))
    verifier = verifier_for(security, SingleSignOn({alice: "alice@example.com", bob: "bob@example.com"}))
    async with (
        store_for(str(tmp_path / "runs.db")) as store,
        make_app(fake_model, project, store=store) as app,
    ):
        server = uvicorn.Server(uvicorn_config(build_http_app(build_server(app), security, verifier), security, 0))
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            await wait_for(lambda: server.started)
            url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/mcp"
            try:
                async with client_of(url, "auto", bearer(alice)) as as_alice:
                    run = await as_alice.call_tool(AGENT, {"task": "review"})
                    assert run.structured_content is not None
                    run_id = run.structured_content["run_id"]
                for token in (bob, carol):
                    async with client_of(url, "auto", bearer(token)) as other:
                        seen = await other.call_tool("get_run", {"run_id": run_id})
                        assert shown(seen, run_id) == shown(
                            await other.call_tool("get_run", {"run_id": UNKNOWN}), UNKNOWN
                        )
                async with client_of(url, "auto", bearer(carol)) as as_carol:
                    carols = await as_carol.call_tool(AGENT, {"task": "review"})
            finally:
                server.should_exit = True
        record = await store.get(run_id)
        carols_record = await store.get(carols.structured_content["run_id"])  # type: ignore[index]
    assert record.principal == "alice@example.com"
    assert carols_record.principal == "carol"
