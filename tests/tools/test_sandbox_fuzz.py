"""Property: whatever string a model sends, resolve() refuses it or returns a safe path inside a root."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from subagents.errors import SandboxError
from subagents.tools.sandbox import SYSTEM_DIRS, Kind, Sandbox

COMPONENTS = st.sampled_from(
    [
        "..", ".", "", "src", "app.py", ".env", ".env.local", ".ENV", ".git", "config", ".gitignore",
        "link_out", "dir_out", "link_in", "link_env", "proc_link", "self", "environ", "fifo", "~",
        "etc", "passwd", "id_rsa", "proc", "dev", "null", "\x00", "\n", "\\", "..\\..", "é", "\udcff",
        "\ud800", "\u2028", "*", "secrets.json",
    ]
)  # fmt: skip
PREFIXES = st.sampled_from(["", "/", "//", "ROOT/", "ROOT/../", "/proc/", "/etc/", "./"])
# Names that exist in the tree, so a good share of examples resolve and the safe side is checked too.
EXISTING = st.sampled_from(
    ["", "src", "src/app.py", "link_in/app.py", ".gitignore", "src/../src/app.py", "ROOT/src/app.py", "ROOT",
     "./src", "link_in", "link_in/../.gitignore", "ROOT/../repo/src"]
)  # fmt: skip
NEAR_VALID = st.builds(lambda good, parts: "/".join([good, *parts]), EXISTING, st.lists(COMPONENTS, max_size=1))
PATHS = st.one_of(
    NEAR_VALID,
    st.builds(
        lambda prefix, parts: prefix + "/".join(parts),
        PREFIXES,
        st.lists(st.one_of(COMPONENTS, st.text(max_size=6)), max_size=8),
    ),
    st.text(max_size=40),
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    base = tmp_path_factory.mktemp("fuzz")
    root = base / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("*.pyc\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    for secret in (".env", ".env.local", "id_rsa", "secrets.json"):
        (root / secret).write_text("SECRET=1\n")
    (base / "etc").mkdir()
    (base / "etc" / "passwd").write_text("root:x:0:0\n")
    (root / "link_out").symlink_to(base / "etc" / "passwd")
    (root / "dir_out").symlink_to(base / "etc")
    (root / "link_in").symlink_to(root / "src")
    (root / "link_env").symlink_to(root / ".env")
    (root / "proc_link").symlink_to("/proc")
    os.mkfifo(root / "fifo")
    return Sandbox([root])


@settings(max_examples=200, deadline=None)
@given(raw=PATHS, kind=st.sampled_from(["file", "dir", "any"]))
def test_resolve_refuses_or_returns_a_safe_path(sandbox: Sandbox, raw: str, kind: Kind) -> None:
    check_resolve(sandbox, raw, kind)


@settings(max_examples=150, deadline=None)
@given(raw=NEAR_VALID)
def test_resolve_near_valid_paths(sandbox: Sandbox, raw: str) -> None:
    check_resolve(sandbox, raw, "any")


def check_resolve(sandbox: Sandbox, raw: str, kind: Kind) -> None:
    root = sandbox.roots[0]
    raw = raw.replace("ROOT", str(root))
    try:
        path = sandbox.resolve(raw, kind=kind)
    except SandboxError as exc:
        event("refused")
        assert str(exc) and "\x00" not in str(exc) and "\n" not in str(exc)
        return
    event("resolved")
    assert path.is_absolute() and str(path) == os.path.realpath(path)
    assert path.is_relative_to(root)
    assert not sandbox.is_denied(path)
    assert not any(path.is_relative_to(d) for d in SYSTEM_DIRS)
    mode = os.stat(path).st_mode
    assert stat.S_ISREG(mode) if kind == "file" else stat.S_ISDIR(mode) if kind == "dir" else True
    assert stat.S_ISREG(mode) or stat.S_ISDIR(mode)


@settings(max_examples=150, deadline=None)
@given(raw=PATHS, kind=st.sampled_from(["file", "dir", "any"]))
def test_open_gives_the_descriptor_of_a_safe_path(sandbox: Sandbox, raw: str, kind: Kind) -> None:
    """What `open` hands back is the very file `resolve` would name, inside the root."""
    raw = raw.replace("ROOT", str(sandbox.roots[0]))
    try:
        handle = sandbox.open(raw, kind=kind)
    except SandboxError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    with handle:
        st = os.stat(handle.path, follow_symlinks=False)
        assert (st.st_dev, st.st_ino) == (handle.st.st_dev, handle.st.st_ino)
        assert handle.path.is_relative_to(sandbox.roots[0]) and not sandbox.is_denied(handle.path)
        assert handle.path == sandbox.resolve(raw, kind=kind)
