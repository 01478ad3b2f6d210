"""Attacks on the file tools that got through an outside test, replayed end to end: a hostile model
(the fake's script) calls Read, Grep, Glob and LS, and nothing secret may reach any request it gets."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from subagents.providers.testing import FakeMessagesServer, text, tool_use, tool_uses
from tests.answers import review_json
from tests.conftest import make_app, model_env, run_once
from tests.helpers import run_cli
from tests.race import swapping

pytestmark = pytest.mark.anyio
SECRET = "SECRET-MARKER-91c4"


def sent(fake: FakeMessagesServer) -> str:
    return "\n".join(json.dumps(r.body) for r in fake.requests)


def results(fake: FakeMessagesServer) -> list[dict[str, object]]:
    return [result for request in fake.requests[1:] for result in request.tool_results]


# --- 2: a parent directory swapped for a symlink between check and open ---


@pytest.fixture
def swapped(project: Path, tmp_path: Path) -> Iterator[list[int]]:
    """`docs` is a real directory, then a link to `outside`, then real again, as fast as a thread can."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text(f"{SECRET}\n")
    (project / "docs").mkdir()
    (project / "docs" / "notes.txt").write_text("harmless notes\n")
    (project / "swap").symlink_to(outside, target_is_directory=True)
    with swapping(project / "docs", project / "swap") as swaps:
        yield swaps


async def test_a_parent_swapped_for_a_symlink_never_leaks(
    fake_model: FakeMessagesServer, project: Path, swapped: list[int]
) -> None:
    reads = [tool_uses([("Read", {"file_path": "docs/notes.txt"})] * 100) for _ in range(6)]
    greps = [
        tool_uses([("Grep", {"pattern": "notes|SECRET", "path": where, "output_mode": "content"})] * 100)
        for where in ["docs", "."] * 3
    ]
    fake_model.set_script([*reads, *greps, text(review_json("done"))])
    outcome = await run_once(make_app(fake_model, project), "security-reviewer", "race it")
    assert outcome.status == "completed"
    assert SECRET not in sent(fake_model)
    done = results(fake_model)
    assert len(done) == 1200 and swapped[0] > 1200  # 600 Reads, 600 Greps, while the tree kept changing
    assert sum("harmless notes" in str(r["content"]) for r in done[:600]) > 0  # reads did succeed
    assert sum("harmless notes" in str(r["content"]) for r in done[600:]) > 0  # and so did searches


# --- 3: a hard link inside the root to a file outside ---


@pytest.fixture
def hard_linked(project: Path, tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"token = {SECRET}\n")
    os.link(outside / "secret.txt", project / "notes.txt")
    return project


HARDLINK_CALLS = [
    tool_use("Read", {"file_path": "notes.txt"}),
    tool_use("Grep", {"pattern": "token", "output_mode": "content"}),
    tool_use("Grep", {"pattern": "token", "path": "notes.txt"}),
]


async def test_a_hard_link_to_a_file_outside_is_refused(fake_model: FakeMessagesServer, hard_linked: Path) -> None:
    fake_model.set_script([*HARDLINK_CALLS, text(review_json("done"))])
    await run_once(make_app(fake_model, hard_linked), "security-reviewer", "read notes")
    read, grep_tree, grep_file = results(fake_model)
    assert read["is_error"] and read["content"] == (
        'Refused: "notes.txt" is a hard link (the file has 2 names), so it may be a file outside the roots '
        "under another name. Hard-linked files are used only when the server runs with --allow-hardlinks."
    )
    assert grep_tree["content"] == (
        "No matches for 'token' in \".\".\n[skipped 1 hard-linked file: such files are searched only when the "
        "server runs with --allow-hardlinks]"
    )
    assert grep_file["is_error"] and "--allow-hardlinks" in str(grep_file["content"])
    assert SECRET not in sent(fake_model)


def test_allow_hardlinks_lets_the_operator_read_them(fake_model: FakeMessagesServer, hard_linked: Path) -> None:
    fake_model.set_script([HARDLINK_CALLS[0], text(review_json("done")), HARDLINK_CALLS[0], text(review_json("done"))])
    env = model_env(fake_model)
    refused = run_cli("run", "security-reviewer", "read notes", "--root", str(hard_linked), "--no-store", env=env)
    allowed = run_cli(
        "run", "security-reviewer", "read notes", "--root", str(hard_linked), "--no-store", "--allow-hardlinks", env=env
    )
    assert refused.returncode == 0 and allowed.returncode == 0, (refused.stderr, allowed.stderr)
    first, second = fake_model.requests[1].tool_results[0], fake_model.requests[3].tool_results[0]
    assert first["is_error"] and "--allow-hardlinks" in first["content"]
    assert not second["is_error"] and f"     1\ttoken = {SECRET}" in second["content"]


# --- 4: secrets the first deny-list missed ---

MISSED_SECRETS = [
    "terraform.tfstate", "prod/terraform.tfstate.backup", ".git-credentials", ".pgpass", ".htpasswd", ".kube/config",
    ".config/gh/hosts.yml", ".vault-token", "service-account-prod.json", ".boto", ".s3cfg", "_netrc",
    ".gnupg/private-keys-v1.d/AB12.key", ".gnupg/trustdb.gpg", "prod.tfvars", "release.jks", "app.keystore",
    ".aws/sso/cache/token.json", ".azure/msal_token_cache.json", ".config/gcloud/access_tokens.db", ".my.cnf",
    ".bash_history", ".envrc", "deploy.env",
]  # fmt: skip
TEMPLATES = [".env.example", ".env.local.sample", "terraform.tfvars.example", "example.env"]


async def test_the_missed_secrets_never_reach_the_model(fake_model: FakeMessagesServer, project: Path) -> None:
    for name in MISSED_SECRETS + TEMPLATES:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(f"KEY={SECRET}\n" if name in MISSED_SECRETS else "KEY=\n")
    looks = [tool_use("Grep", {"pattern": "KEY", "output_mode": "content"}), tool_use("Glob", {"pattern": "**/*"})]
    looks += [tool_use("LS", {"path": d}) for d in (".", ".kube", ".config", "prod")]
    reads = tool_uses([("Read", {"file_path": name}) for name in MISSED_SECRETS + TEMPLATES])
    fake_model.set_script([*looks, reads, text(review_json("done"))])
    await run_once(make_app(fake_model, project), "security-reviewer", "find keys")
    assert SECRET not in sent(fake_model)
    done = results(fake_model)
    grep = str(done[0]["content"])
    assert all(f"{name}:1:KEY=" in grep for name in TEMPLATES)  # templates stay searchable
    for name, result in zip(MISSED_SECRETS, done[len(looks) : len(looks) + len(MISSED_SECRETS)], strict=True):
        assert result["is_error"] and "secrets deny-list" in str(result["content"]), (name, result)
    for name, result in zip(TEMPLATES, done[len(looks) + len(MISSED_SECRETS) :], strict=True):
        assert not result["is_error"] and "KEY=" in str(result["content"]), (name, result)


# --- 5: LS of a huge directory: bounded work, not only bounded output ---


async def test_ls_of_200000_entries_stops_at_its_entry_budget(fake_model: FakeMessagesServer, project: Path) -> None:
    big, sources = project / "big", [project / f"source{k}" for k in range(4)]
    big.mkdir()
    for source in sources:
        source.touch()
    for i in range(200_000):  # names for 4 files (links are cheaper to make than files; ext4 allows 65,000 each)
        os.link(sources[i % 4], big / f"f{i:06}")
    fake_model.set_script([tool_use("LS", {"path": "big"}), text(review_json("done"))])
    await run_once(make_app(fake_model, project), "security-reviewer", "list it")
    [listing] = results(fake_model)
    lines = str(listing["content"]).splitlines()
    # The bound: at most Sandbox.max_walk_entries (100,000) entries read, each with name-only checks.
    assert lines[0] == "big/ (100000 entries)" and len(lines) == 1003
    assert lines[1:1001] == sorted(lines[1:1001]) and all(line.startswith("f") for line in lines[1:1001])
    assert lines[1001:] == [
        "[showing the first 1000 of 100000 entries]",
        "[stopped after looking at 100,000 entries, the limit of one call; the directory has more entries; "
        "find names in it with Glob and a pattern]",
    ]
