"""The sandbox: what a model-chosen path may resolve to, and why it is refused otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from subagents.errors import SandboxError
from subagents.tools.globs import glob_matcher
from subagents.tools.sandbox import DEFAULT_DENY, Kind, Sandbox, shared_sandbox


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A root with code, secrets, links in and out, and a FIFO; `outside` sits next to it."""
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("*.pyc\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    for secret in (".env", ".env.local", "id_rsa", "server.pem", "gcp-credentials.json", "secrets.yaml"):
        (root / secret).write_text("SECRET=1\n")
    (root / ".aws").mkdir()
    (root / ".aws" / "credentials").write_text("[default]\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    (root / "link_out").symlink_to(outside / "passwd")
    (root / "dir_out").symlink_to(outside)
    (root / "link_in").symlink_to(root / "src" / "app.py")
    (root / "link_to_env").symlink_to(root / ".env")
    (root / "proc_link").symlink_to("/proc")
    os.mkfifo(root / "fifo")
    return root


def refusal(sandbox: Sandbox, raw: str, kind: Kind = "any") -> str:
    with pytest.raises(SandboxError) as info:
        sandbox.resolve(raw, kind=kind)
    return str(info.value)


def test_roots_are_resolved_and_must_be_directories(tmp_path: Path, repo: Path) -> None:
    (tmp_path / "alias").symlink_to(repo)
    assert Sandbox([tmp_path / "alias"]).roots == (repo.resolve(),)
    with pytest.raises(ValueError, match="missing"):
        Sandbox([tmp_path / "missing"])
    with pytest.raises(ValueError, match="app.py"):
        Sandbox([repo / "src" / "app.py"])
    with pytest.raises(ValueError, match="system filesystem"):
        Sandbox([Path("/proc")])
    with pytest.raises(ValueError):
        Sandbox([])


def test_relative_and_absolute_paths_inside_the_root(repo: Path) -> None:
    sandbox = Sandbox([repo])
    assert sandbox.resolve("src/app.py", kind="file") == repo / "src" / "app.py"
    assert sandbox.resolve(str(repo / "src"), kind="dir") == repo / "src"
    assert sandbox.resolve("src/pkg/../app.py") == repo / "src" / "app.py"
    assert sandbox.resolve(".") == repo
    assert sandbox.resolve(".gitignore", kind="file") == repo / ".gitignore"


@pytest.mark.parametrize(
    "raw", ["../outside/passwd", "../../../../../../etc/passwd", "src/../../outside", "/etc/passwd"]
)
def test_paths_outside_the_roots_are_refused(repo: Path, raw: str) -> None:
    message = refusal(Sandbox([repo]), raw)
    assert message == (
        f'Refused: "{raw}" resolves outside the allowed roots ({repo}). Only files under the roots can be read.'
    )


def test_symlinks_are_judged_by_their_target(repo: Path) -> None:
    sandbox = Sandbox([repo])
    assert "resolves outside the allowed roots" in refusal(sandbox, "link_out")
    assert "resolves outside the allowed roots" in refusal(sandbox, "dir_out/passwd")
    assert "resolves outside the allowed roots" in refusal(sandbox, "dir_out")
    assert sandbox.resolve("link_in", kind="file") == repo / "src" / "app.py"
    (repo / "src_link").symlink_to(repo / "src")
    assert sandbox.resolve("src_link/pkg/mod.py", kind="file") == repo / "src" / "pkg" / "mod.py"
    assert "matches the secrets deny-list (.env)" in refusal(sandbox, "link_to_env")


def test_a_link_named_like_a_secret_is_refused_even_if_harmless(repo: Path) -> None:
    (repo / "id_rsa_link").symlink_to(repo / "src" / "app.py")
    assert "deny-list (id_rsa*)" in refusal(Sandbox([repo]), "id_rsa_link")


def test_system_filesystems_are_refused(repo: Path) -> None:
    sandbox = Sandbox([repo])
    expected = "is under /proc, a system filesystem that is never readable."
    assert refusal(sandbox, "proc_link/self/environ") == f'Refused: "proc_link/self/environ" {expected}'
    assert expected in refusal(sandbox, "/proc/self/environ")
    assert "resolves outside" in refusal(sandbox, "/etc/passwd")


def test_system_filesystems_are_refused_even_under_a_root_of_slash() -> None:
    sandbox = Sandbox([Path("/")])
    assert "under /proc, a system filesystem" in refusal(sandbox, "/proc/self/environ")
    assert "under /proc" in refusal(sandbox, "proc/self/environ")
    assert "under /sys" in refusal(sandbox, "/sys/kernel")
    assert "under /dev" in refusal(sandbox, "/dev/null")
    assert "under /proc" in refusal(sandbox, "/proc/self/cwd")  # a magic link that leads out of /proc
    assert "under /proc" in refusal(sandbox, "/proc/self/root/etc/hostname")


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (".env", ".env"),
        (".env.local", ".env.*"),
        ("id_rsa", "id_rsa*"),
        ("server.pem", "*.pem"),
        (".git/config", ".git/**"),
        (".git", ".git/**"),
        (".aws/credentials", ".aws/**"),
        ("gcp-credentials.json", "*credentials*.json"),
        ("secrets.yaml", "secrets.y*ml"),
        (".ENV", ".env"),  # case-insensitive: the same file on macOS
        ("sub/.ssh/id_ed25519", ".ssh/**"),  # missing files are refused by name, before existence
    ],
)
def test_secrets_are_refused_with_the_matching_rule(repo: Path, raw: str, rule: str) -> None:
    assert refusal(Sandbox([repo]), raw) == (
        f'Refused: "{raw}" matches the secrets deny-list ({rule}); secrets are never sent to the model.'
    )


def test_missing_paths_and_wrong_kinds(repo: Path) -> None:
    sandbox = Sandbox([repo])
    assert refusal(sandbox, "src/x.py", "file") == f'No such file: "src/x.py" (looked in {repo}/src/x.py).'
    assert refusal(sandbox, "nope", "dir").startswith('No such directory: "nope"')
    assert refusal(sandbox, "src/app.py/x", "any").startswith('No such file or directory: "src/app.py/x"')
    assert "is a directory, not a file" in refusal(sandbox, "src", "file")
    assert "is a file, not a directory" in refusal(sandbox, "src/app.py", "dir")


def test_tilde_is_not_expanded(repo: Path) -> None:
    assert refusal(Sandbox([repo]), "~/.bashrc").startswith(
        f'No such file or directory: "~/.bashrc" (looked in {repo}/~'
    )


def test_fifo_is_refused(repo: Path) -> None:
    assert (
        refusal(Sandbox([repo]), "fifo") == 'Refused: "fifo" is a FIFO (named pipe), not a regular file or directory.'
    )


@pytest.mark.parametrize("raw", ["src/\x00app.py", "a\nb", "x\x1b[31m", "\x85", ""])
def test_nul_and_control_characters_are_refused(repo: Path, raw: str) -> None:
    message = refusal(Sandbox([repo]), raw)
    assert "control character" in message or "empty" in message
    assert "\x00" not in message and "\n" not in message


def test_unencodable_and_overlong_paths_are_refused(repo: Path) -> None:
    assert "not valid text" in refusal(Sandbox([repo]), "\ud800.py")
    assert "longer than 4096" in refusal(Sandbox([repo]), "a/" * 3000)


def test_relative_paths_use_the_first_of_several_roots(tmp_path: Path, repo: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("n\n")
    sandbox = Sandbox([repo, other])
    assert sandbox.resolve(str(other / "notes.md")) == other / "notes.md"
    assert "No such file" in refusal(sandbox, "notes.md")
    assert sandbox.display(other / "notes.md") == str(other / "notes.md")
    assert Sandbox([repo]).display(repo / "src" / "app.py") == "src/app.py"
    assert Sandbox([repo]).display(repo) == "."


def test_is_denied(repo: Path, tmp_path: Path) -> None:
    sandbox = Sandbox([repo])
    assert sandbox.is_denied(repo / ".env") and sandbox.is_denied(Path(".git/HEAD"))
    assert sandbox.is_denied(tmp_path / "elsewhere")
    assert sandbox.is_denied(Path("/proc/self/environ"))
    assert not sandbox.is_denied(repo / ".gitignore") and not sandbox.is_denied(repo / ".github" / "ci.yml")
    assert not sandbox.is_denied(repo / "src" / "environment.py")


def test_custom_deny_list_replaces_the_default(repo: Path) -> None:
    sandbox = Sandbox([repo], deny=["*.py"])
    assert "deny-list (*.py)" in refusal(sandbox, "src/app.py")
    assert sandbox.resolve(".env") == repo / ".env"
    assert ".env" in DEFAULT_DENY


def walked(sandbox: Sandbox, raw: str, pattern: str | None = None) -> list[Path]:
    with sandbox.open(raw, kind="dir") as base, sandbox.walk(base, pattern) as walk:
        return [found.path for found in walk]


def test_walk_is_sorted_and_skips_what_it_must(repo: Path) -> None:
    (repo / "node_modules" / "x").mkdir(parents=True)
    (repo / "node_modules" / "x" / "i.js").write_text("")
    (repo / "__pycache__").mkdir()
    (repo / "__pycache__" / "a.pyc").write_bytes(b"")
    (repo / "bad\nname.py").write_text("")
    files = [p.relative_to(repo).as_posix() for p in walked(Sandbox([repo]), ".")]
    # link_in is yielded as its target, once; link_out, dir_out, proc_link, fifo, secrets are skipped.
    assert files == [".gitignore", "src/app.py", "src/pkg/mod.py"]


def test_walk_pattern_and_budget(repo: Path) -> None:
    sandbox = Sandbox([repo])
    assert [p.name for p in walked(sandbox, "src", "*.py")] == ["app.py", "mod.py"]
    assert [p.name for p in walked(sandbox, ".", "src/*.py")] == ["app.py"]
    small = Sandbox([repo], max_walk_entries=3)
    with small.open(".", kind="dir") as base, small.walk(base) as walk:
        list(walk)
    assert walk.truncated and walk.budget.looked == 3
    assert walk.budget.note("narrow it") == "[stopped after looking at 3 entries, the limit of one call; narrow it]"


def test_walk_under_a_root_of_slash_never_enters_proc(tmp_path: Path) -> None:
    files = walked(Sandbox([Path("/")], max_walk_entries=2000), "/")
    assert not any(p.is_relative_to("/proc") or p.is_relative_to("/sys") for p in files)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.py", "a/b/c.py", True),
        ("**/*.py", "c.py", True),
        ("**/*.py", "a/b/c.py", True),
        ("src/**/*.ts", "src/a/b.ts", True),
        ("src/**/*.ts", "lib/a/b.ts", False),
        ("*.{ts,tsx}", "x/y.tsx", True),
        ("src/*.py", "src/a/b.py", False),
        ("[ab].py", "b.py", True),
        ("[!ab].py", "b.py", False),
        ("[z-a].py", "[z-a].py", False),  # an empty range matches nothing, as in fnmatch
        ("[]a].py", "].py", True),
        ("./src/*.py", "src/a.py", True),
    ],
)
def test_glob_matcher(pattern: str, path: str, matches: bool) -> None:
    assert glob_matcher(pattern)(path) is matches


@pytest.mark.parametrize(
    "name",
    [".env.example", ".env.sample", ".env.local.example", "example.env", "terraform.tfvars.example", "secrets.py",
     "app/secrets.py", "src/keystore.py", "docs/credentials.md", "config/settings.xml", ".aws.md", "kube/config"],
)  # fmt: skip
def test_code_and_env_templates_stay_readable(tmp_path: Path, name: str) -> None:
    """A reviewer must see `secrets.py` (code) and `.env.example` (names, no values)."""
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text("X = 1\n")
    assert Sandbox([tmp_path]).resolve(name) == (tmp_path / name).resolve()


@pytest.mark.parametrize(
    "name",
    [".env", ".env.local", ".env.production", "secrets.json", "secrets.yaml", "config/secrets.yml", "secrets.toml",
     "infra/prod.tfvars", "infra/terraform.tfstate", ".kube/config", "home/.gnupg", "x/.config/gh/hosts.yml",
     "ci/service-account.json", ".m2/settings.xml", "signing/release.jks", ".Vault-Token", ".npmrc"],
)  # fmt: skip
def test_real_secrets_stay_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text("X = 1\n")
    with pytest.raises(SandboxError, match="deny-list"):
        Sandbox([tmp_path]).resolve(name)


def test_sandboxes_share_one_compiled_deny_list(tmp_path: Path) -> None:
    """Every run builds a sandbox; the deny-list rules are compiled once per rule set, not per run."""
    other = tmp_path / "other"
    other.mkdir()
    assert Sandbox((tmp_path,)).denylist is Sandbox((other,)).denylist
    assert Sandbox((tmp_path,), deny=("*.secret",)).denylist is not Sandbox((tmp_path,)).denylist


def test_a_root_set_shares_one_sandbox_until_a_root_is_replaced_and_then_it_is_checked_again(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "a.txt").write_text("first", encoding="utf-8")
    first = shared_sandbox([project])
    assert shared_sandbox([project]) is first  # built once for the set, not per run

    project.rename(tmp_path / "old")  # the directory is replaced by another one of the same name
    project.mkdir()
    (project / "a.txt").write_text("second", encoding="utf-8")
    second = shared_sandbox([project])
    assert second is not first
    with second.open("a.txt", kind="file") as handle, handle.file() as f:
        assert f.read() == b"second"

    (project / "a.txt").unlink()
    project.rmdir()
    project.symlink_to("/proc")  # now a link to a system filesystem: refused, as a new sandbox would be
    with pytest.raises(ValueError, match="system filesystem"):
        shared_sandbox([project])
