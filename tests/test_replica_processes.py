"""Two real `subagents serve` replicas on one PostgreSQL database, as a team deploys them: a run started
through A is polled to its report, continued and cancelled through B; its principal's other callers see
nothing of it on either replica; and when A is killed outright, B marks A's run interrupted once A's
lease runs out."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from subprocess import DEVNULL, PIPE, Popen, TimeoutExpired

import anyio
import pytest
from mcp import Client

from subagents.history.store import INTERRUPTED_ERROR
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text
from subagents.tokens import new_token
from tests.answers import review_json
from tests.conftest import model_env
from tests.helpers import SUBAGENTS, child_env, free_port, wait_for_port
from tests.mcp.test_principals_http import UNKNOWN, bearer, shown, tokens_file
from tests.mcp.test_run_caps import HeldReplies, client_of, until_finished, wait_for
from tests.stores import postgres_schema

pytestmark = pytest.mark.anyio
AGENT = "security-reviewer"
LEASE_S = 2.0


@contextmanager
def two_replicas(fake: FakeMessagesServer, project: Path, tokens: Path) -> Iterator[tuple[str, Popen[str], str]]:
    """Replicas A and B on one fresh PostgreSQL schema, started side by side (both migrate it at once);
    yields A's URL, A's process and B's URL."""
    with postgres_schema() as store, ExitStack() as stack:
        args = ["--root", str(project), "--store", store, "--auth-tokens", str(tokens), "--lease-ttl", str(LEASE_S)]
        replicas = []
        for _ in range(2):
            port = free_port()
            command = [*SUBAGENTS, "serve", "--transport", "http", "--port", str(port), *args]
            proc = Popen(command, env=child_env(model_env(fake)), stdin=DEVNULL, stdout=DEVNULL, stderr=PIPE, text=True)
            stack.callback(stop, proc)
            replicas.append((f"http://127.0.0.1:{port}/mcp", port, proc))
        for _, port, proc in replicas:
            wait_for_port(port, proc)
        (url_a, _, proc_a), (url_b, _, _) = replicas
        yield url_a, proc_a, url_b


def stop(proc: Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except TimeoutExpired:
        proc.kill()


async def status(client: Client, run_id: str) -> str:
    result = await client.call_tool("get_run", {"run_id": run_id})
    assert result.structured_content is not None, result
    return str(result.structured_content["status"])


async def test_a_run_started_on_one_replica_is_polled_continued_and_cancelled_through_the_other(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    held = HeldReplies()  # "quick" tasks are answered at once; others wait for release()
    fake_model.set_script(held)
    alice, bob = new_token(), new_token()
    tokens = tokens_file(tmp_path / "tokens", alice=alice, bob=bob)
    with two_replicas(fake_model, project, tokens) as (url_a, _proc_a, url_b):
        try:
            async with (
                client_of(url_a, "auto", bearer(alice)) as alice_a,
                client_of(url_b, "auto", bearer(alice)) as alice_b,
                client_of(url_b, "legacy", bearer(bob)) as bob_b,
            ):
                started = await alice_a.call_tool("start_agent", {"agent": AGENT, "task": "review the parser"})
                assert started.structured_content is not None
                run_id = started.structured_content["run_id"]
                await wait_for(lambda: len(fake_model.requests) == 1)
                polled_running = await status(alice_b, run_id)
                bob_sees = shown(await bob_b.call_tool("get_run", {"run_id": run_id}), run_id)
                bob_unknown = shown(await bob_b.call_tool("get_run", {"run_id": UNKNOWN}), UNKNOWN)
                held.release()
                report = await until_finished(alice_b, run_id)
                follow = await alice_b.call_tool("continue_run", {"run_id": run_id, "message": "quick: and the lexer?"})

                fake_model.set_script(answer_slowly)
                second = await alice_a.call_tool("start_agent", {"agent": AGENT, "task": "review the lexer"})
                assert second.structured_content is not None
                second_id = second.structured_content["run_id"]
                await wait_for(lambda: len(fake_model.requests) == 3)
                cancelled = await alice_b.call_tool("cancel_run", {"run_id": second_id})
                await wait_for(lambda: fake_model.disconnects >= 1)  # A dropped its model call
                after_cancel = await alice_a.call_tool("get_run", {"run_id": second_id})
        finally:
            held.release()
    assert polled_running == "running"  # B read A's run from the store while A executed it
    assert bob_sees == bob_unknown
    assert report["status"] == "completed" and "review the parser" in report["report"]
    assert follow.structured_content is not None and follow.structured_content["continued_from"] == run_id
    assert [m["role"] for m in fake_model.requests[1].messages] == ["user", "assistant", "user"]  # A's transcript
    assert cancelled.structured_content == {"run_id": second_id, "status": "cancelled"}
    assert after_cancel.structured_content is not None
    assert (after_cancel.structured_content["status"], after_cancel.structured_content["error"]) == (
        "cancelled",
        "The run was cancelled.",
    )


def answer_slowly(request: RecordedRequest) -> Reply:
    return text(review_json(), latency=60)  # longer than the test: the run is still going when A dies


async def test_when_a_replica_is_killed_another_marks_its_run_interrupted_once_its_lease_runs_out(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script(answer_slowly)
    alice = new_token()
    tokens = tokens_file(tmp_path / "tokens", alice=alice)
    with two_replicas(fake_model, project, tokens) as (url_a, proc_a, url_b):
        async with client_of(url_a, "auto", bearer(alice)) as alice_a:
            started = await alice_a.call_tool("start_agent", {"agent": AGENT, "task": "review everything"})
            assert started.structured_content is not None
            run_id = started.structured_content["run_id"]
            await wait_for(lambda: len(fake_model.requests) == 1)
        async with client_of(url_b, "auto", bearer(alice)) as alice_b:
            before = await status(alice_b, run_id)
            proc_a.send_signal(signal.SIGKILL)  # no chance to record anything
            proc_a.wait(timeout=10)
            killed = time.monotonic()
            # B reaps at its lease rounds (every LEASE_S / 4): well before three leases have passed. With the
            # default 20 s lease (the setting ignored) this would time out.
            with anyio.fail_after(3 * LEASE_S):
                while (now := await status(alice_b, run_id)) == "running":
                    await anyio.sleep(0.1)
            waited = time.monotonic() - killed
            record = (await alice_b.call_tool("get_run", {"run_id": run_id})).structured_content
    assert before == "running"
    assert now == "interrupted", waited
    assert record is not None and record["error"] == INTERRUPTED_ERROR
