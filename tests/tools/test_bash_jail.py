"""What the bubblewrap sandbox confines. Each test is an attack a command (or the code it runs, such as
an agent-written conftest.py) can make; each passed without the sandbox."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from subagents.tools.base import ToolOutput
from subagents.tools.bash import Bash, BashPolicy
from subagents.tools.jail import interpreter_dirs
from tests.helpers import processes_with

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("bwrap")]

POLICY = BashPolicy(enabled=True, allow=(shlex.quote(sys.executable),), timeout_s=20)


async def run_py(workdir: Path, code: str, policy: BashPolicy = POLICY) -> ToolOutput:
    """Run `code` as the agent would: write a script into the workspace, then run it with Bash."""
    (workdir / "attack.py").write_text(code)
    return await Bash(workdir, policy).run({"command": shlex.join([sys.executable, "attack.py"])})


def printed(out: ToolOutput) -> object:
    """The JSON the command printed (its last output line)."""
    assert out.text.startswith("Command exit code 0."), out.text
    return json.loads(out.text.split("\n")[-2])


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def host_process(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A process of the server's user holding a secret in its environment, as the server holds its API key."""
    secret = f"sk-ant-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env={"ANTHROPIC_API_KEY": secret}, cwd=tmp_path
    )
    try:
        yield proc.pid, secret
    finally:
        proc.kill()
        proc.wait()


LOOK_AT_PROCESSES = """
import json, os, sys
def environ(pid):
    try:
        return open(f"/proc/{pid}/environ", "rb").read().decode("utf-8", "replace")
    except OSError as exc:
        return type(exc).__name__
pids = [p for p in os.listdir("/proc") if p.isdigit()]
print(json.dumps({
    "leaked": [p for p in pids if SECRET in environ(p)],
    "host_pid": environ(HOST_PID),
    "init": environ(1),
    "parent": environ(os.getppid()),
    "count": len(pids),
}))
"""


async def test_no_process_environment_of_the_host_is_readable(workdir: Path, host_process: tuple[int, str]) -> None:
    pid, secret = host_process
    code = LOOK_AT_PROCESSES.replace("SECRET", repr(secret)).replace("HOST_PID", str(pid))
    out = await run_py(workdir, code)
    seen = printed(out)
    assert secret not in out.text
    # Only the sandbox's own processes exist: its init (bwrap, started with an empty environment) and
    # the command. The host's pid 1, the server and the process holding the key are not there.
    assert seen == {"leaked": [], "host_pid": "FileNotFoundError", "init": "", "parent": "", "count": 2}


async def test_files_outside_the_workspace_are_neither_readable_nor_writable(workdir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("the user's other project\n")
    planted = f"planted-{uuid.uuid4().hex}"
    host_home = Path(os.environ["HOME"])  # this test's HOME, as the server's own
    (host_home / "notes.txt").write_text("in the server user's home\n")
    # root's home shows at most the path down to the server's Python, bound read-only (pyenv)
    on_the_way = {d.relative_to("/root").parts[0] for d in interpreter_dirs() if d.is_relative_to("/root")}
    code = f"""
import json, os
def attempt(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return type(exc).__name__
def listing(path):
    try:
        return os.listdir(path)
    except OSError:
        return []
print(json.dumps({{
    "read": attempt(lambda: open({str(outside / "secret.txt")!r}).read()),
    "write": attempt(lambda: open({str(outside / "new.txt")!r}, "w").write("x")),
    "home": listing(os.path.expanduser("~root")),
    "home_file": attempt(lambda: open({str(host_home / "notes.txt")!r}).read()),
    "shadow": attempt(lambda: open("/etc/shadow").read()),
    "root_dir": attempt(lambda: open("/{planted}", "w")),
    "usr": attempt(lambda: open("/usr/{planted}", "w")),
    "workspace": attempt(lambda: open("mine.txt", "w").write("ok")),
}}))
"""
    seen = printed(await run_py(workdir, code))
    assert isinstance(seen, dict) and set(seen.pop("home")) <= on_the_way
    assert seen == {
        "read": "FileNotFoundError",
        "write": "FileNotFoundError",
        "home_file": "FileNotFoundError",
        "shadow": "FileNotFoundError",
        "root_dir": "OSError",  # EROFS: the sandbox's root is read-only
        "usr": "OSError",
        "workspace": "done",
    }
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (workdir / "mine.txt").read_text() == "ok"
    assert not await anyio.Path(f"/{planted}").exists() and not await anyio.Path(f"/usr/{planted}").exists()


async def test_a_listener_on_the_hosts_loopback_is_unreachable(workdir: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = f"""
import json, socket
def connect(host):
    try:
        socket.create_connection((host, {port}), timeout=3).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__
print(json.dumps({{"loopback": connect("127.0.0.1"), "outside": connect("192.0.2.1")}}))
"""
        seen = printed(await run_py(workdir, code))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
    assert seen == {"loopback": "ConnectionRefusedError", "outside": "OSError"}  # ENETUNREACH: no route


async def test_a_setsid_double_forked_daemon_is_gone_when_the_call_returns(workdir: Path) -> None:
    marker = f"daemon-{uuid.uuid4().hex}"
    code = f"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open("daemon.started", "w").write(str(os.getpid()))
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", "{marker[::-1]}"[::-1]])
    os._exit(0)
os.wait()
while not os.path.exists("daemon.started"):
    time.sleep(0.01)
print("parent exits")
"""
    out = await run_py(workdir, code)
    assert out.text.startswith("Command exit code 0.") and "parent exits" in out.text
    assert (workdir / "daemon.started").exists()
    assert processes_with(marker) == []  # no wait: the sandbox ends with its last process


async def test_root_in_the_sandbox_has_no_capabilities_and_cannot_make_namespaces(workdir: Path) -> None:
    code = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
caps = [line.split()[1] for line in open("/proc/self/status") if line.startswith(("CapEff", "CapPrm", "CapBnd"))]
remount = libc.mount(b"none", b"/usr", None, 0x20 | 0x1000, None)  # MS_REMOUNT | MS_BIND, read-write
userns = libc.unshare(0x10000000)  # CLONE_NEWUSER: a fresh namespace would give back every capability
print(json.dumps({"caps": caps, "remount": remount, "unshare": userns}))
"""
    seen = printed(await run_py(workdir, code))
    assert seen == {"caps": ["0000000000000000"] * 3, "remount": -1, "unshare": -1}


async def test_an_operator_read_only_directory_is_visible_and_stays_unchanged(workdir: Path, tmp_path: Path) -> None:
    tools = tmp_path / "toolchain"
    tools.mkdir()
    (tools / "VERSION").write_text("1.2.3\n")
    code = f"""
import json
def attempt(action):
    try:
        return action()
    except OSError as exc:
        return type(exc).__name__
print(json.dumps({{
    "version": attempt(lambda: open({str(tools / "VERSION")!r}).read()),
    "write": attempt(lambda: open({str(tools / "planted")!r}, "w").write("x")),
}}))
"""
    policy = POLICY.model_copy(update={"read_only": (tools,)})
    assert printed(await run_py(workdir, code, policy)) == {"version": "1.2.3\n", "write": "OSError"}
    assert printed(await run_py(workdir, code)) == {"version": "FileNotFoundError", "write": "FileNotFoundError"}
    assert sorted(p.name for p in tools.iterdir()) == ["VERSION"]


async def test_home_and_tmpdir_are_a_scratch_directory_inside_the_sandbox(workdir: Path) -> None:
    code = """
import json, os, tempfile
path = tempfile.mkstemp()[1]
open(os.path.expanduser("~/.cache-test"), "w").write("x")
print(json.dumps({"home": os.environ["HOME"], "tmp": path, "cwd": os.getcwd()}))
"""
    seen = printed(await run_py(workdir, code))
    assert isinstance(seen, dict)
    assert seen["home"] != os.environ["HOME"] and seen["tmp"].startswith(seen["home"])
    assert seen["cwd"] == str(workdir)  # the workspace is at its own path: paths in output match
    assert not await anyio.Path(seen["home"]).exists()  # removed after the call
