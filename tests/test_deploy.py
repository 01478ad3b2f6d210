"""`deploy/replicas.sh` on this machine, as the deploy README tells a team to run it: PostgreSQL from Debian's
package, two replicas, HAProxy in front with `deploy/haproxy.cfg`. Through the balancer both protocol eras
work and a run is started, polled and continued whichever replica each request lands on. Without the stick
table, a handshake-era session breaks on its second replica (as the README says) and the 2026 era does not.

Needs the postgresql and haproxy packages (`.ci/run` installs them); without them the test skips, unless
SUBAGENTS_REQUIRE_POSTGRES=1, when it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import MCPError

from subagents.providers.testing import FakeMessagesServer, text
from tests.answers import review_json
from tests.conftest import TEST_KEY
from tests.helpers import child_env, free_port, wait_for_port
from tests.mcp.test_principals_http import UNKNOWN, bearer
from tests.mcp.test_run_caps import client_of, until_finished
from tests.stores import REQUIRE_POSTGRES

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "replicas.sh"


@dataclass
class Deployment:
    lb: str
    replicas: tuple[int, int]
    token: str
    state: Path
    fake: FakeMessagesServer


def needs(program: str) -> None:
    found = shutil.which(program) or (program == "postgres" and Path("/usr/lib/postgresql").is_dir())
    if not found:
        reason = f"{program} is not installed (apt-get install {'postgresql' if program == 'postgres' else program})"
        if REQUIRE_POSTGRES:
            pytest.fail(f"SUBAGENTS_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    needs("postgres")
    needs("haproxy")
    # Not under pytest's private tmp: as root the cluster belongs to the postgres user, who must reach it.
    base = Path(tempfile.mkdtemp(prefix="subagents-deploy-"))
    base.chmod(0o755)
    ports = (free_port(), free_port())
    lb = free_port()
    with FakeMessagesServer(lambda request: text(review_json(f"on: {request.last_user_text[:30]}"))) as fake:
        env = child_env(
            {
                "ANTHROPIC_API_KEY": TEST_KEY,
                "ANTHROPIC_BASE_URL": fake.url,
                "HOME": str(base),
                "SUBAGENTS_DEPLOY_DIR": str(base / "state"),
                "SUBAGENTS": f"{sys.executable} -m subagents",
                "PG_PORT": str(free_port()),
                "REPLICA_PORTS": f"{ports[0]} {ports[1]}",
                "LB_PORT": str(lb),
            }
        )
        try:
            up = subprocess.run(["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=240)
            assert up.returncode == 0, up.stderr
            user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout
            token = (base / "state" / f"token-{user.strip()}").read_text().strip()
            yield Deployment(f"http://127.0.0.1:{lb}/mcp", ports, token, base / "state", fake)
            down = subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, text=True, timeout=120)
            status = subprocess.run(["bash", str(SCRIPT), "status"], env=env, capture_output=True, text=True)
            assert down.returncode == 0, down.stderr
            assert "running" not in status.stdout, status.stdout
        finally:
            subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, timeout=120)
            shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_through_the_balancer_a_run_is_started_polled_and_continued_in_both_eras(
    mode: str, deployment: Deployment
) -> None:
    async with client_of(deployment.lb, mode, bearer(deployment.token)) as client:
        started = await client.call_tool("start_agent", {"agent": "security-reviewer", "task": f"review in {mode}"})
        assert started.structured_content is not None, started
        run_id = started.structured_content["run_id"]
        finished = await until_finished(client, run_id)  # each poll may land on either replica
        follow = await client.call_tool("continue_run", {"run_id": run_id, "message": "and the tests?"})
        for _ in range(4):  # a session's later requests go where it lives
            await client.call_tool("get_run", {"run_id": UNKNOWN})
    assert finished["status"] == "completed" and f"review in {mode}" in finished["report"]
    assert follow.structured_content is not None and follow.structured_content["continued_from"] == run_id


@contextmanager
def round_robin(deployment: Deployment) -> Iterator[str]:
    """HAProxy with `deploy/haproxy.cfg` less its stick table: every request to the next replica in turn."""
    config = (REPO / "deploy" / "haproxy.cfg").read_text()
    plain = "\n".join(line for line in config.splitlines() if not line.strip().startswith("stick"))
    (deployment.state / "round-robin.cfg").write_text(plain + "\n")
    port = free_port()
    env = os.environ | {
        "LB_BIND": f"127.0.0.1:{port}",
        "REPLICA_A": f"127.0.0.1:{deployment.replicas[0]}",
        "REPLICA_B": f"127.0.0.1:{deployment.replicas[1]}",
    }
    command = ["haproxy", "-db", "-f", str(deployment.state / "round-robin.cfg")]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_without_the_stick_table_a_handshake_era_session_breaks_and_the_2026_era_does_not(
    deployment: Deployment,
) -> None:
    with round_robin(deployment) as url:
        async with client_of(url, "auto", bearer(deployment.token)) as modern:
            answers = [await modern.call_tool("get_run", {"run_id": UNKNOWN}) for _ in range(4)]
        with pytest.raises(BaseExceptionGroup) as broken:
            async with client_of(url, "legacy", bearer(deployment.token)) as legacy:
                for _ in range(4):
                    await legacy.call_tool("get_run", {"run_id": UNKNOWN})
    assert all(a.is_error and "No run with id" in str(a.structured_content) for a in answers)
    errors = broken.value.subgroup(lambda e: isinstance(e, MCPError))
    assert errors is not None and "Session not found" in str(errors.exceptions)
