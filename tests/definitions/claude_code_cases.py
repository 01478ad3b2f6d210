"""Agent files beside what Claude Code 2.1.330 listed for them: the record of its rules, found by experiment.

How each `listed` line was observed: the files below were written into a scratch git repository,
`claude -p hi` ran from `R/pkg/src` with a scratch HOME, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 and
ANTHROPIC_BASE_URL at the package's FakeMessagesServer, and the request Claude Code sent listed its agents
as `- name: description (Tools: ...)`. `listed` is that line without the `- `; None means Claude Code did
not list the file. tests/interop/test_agent_files.py repeats the experiment against the pinned Claude Code;
tests/definitions/test_claude_code_parity.py holds our loader to the same table.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

AGENTS = "R/.claude/agents"
PKG_AGENTS = "R/pkg/.claude/agents"
RUN_FROM = "R/pkg/src"  # Claude Code's working directory, and our project folder


@dataclass(frozen=True)
class Case:
    path: str  # under the scratch folder
    text: str
    listed: str | None  # Claude Code's line for it, without "- "
    rule: str
    ours: Literal["same", "loads", "rejects"] = "same"  # where we differ on purpose


def agent(name: str, description: str, extra: str = "") -> str:
    return f"---\nname: {name}\ndescription: {description}\n{extra}---\nBody of {name.strip()}.\n"


def case(file: str, text: str, listed: str | None, rule: str, **kw: Literal["same", "loads", "rejects"]) -> Case:
    return Case(f"{AGENTS}/{file}", text, listed, rule, **kw)


ALL = "(Tools: All tools)"
CASES: tuple[Case, ...] = (
    # --- the YAML repair: invalid frontmatter is read again with special values quoted ---
    case("colon.md", agent("colon", "Use this agent when: the user asks"),
         f"colon: Use this agent when: the user asks {ALL}", "an unquoted ': ' is quoted and read again"),
    case("examples.md", agent("examples", 'Use for X. Examples: <example>Context: Y. user: "do Y"</example>'),
         f'examples: Use for X. Examples: <example>Context: Y. user: "do Y"</example> {ALL}',
         "the description style of public collections (examples inline) is repaired"),
    case("partial-quote.md", agent("partial-quote", '"Use when" the user: asks'),
         f'partial-quote: "Use when" the user: asks {ALL}', "a value quoted only in part is quoted whole"),
    case("brackets.md", agent("brackets", "[note] use when: x"),
         f"brackets: [note] use when: x {ALL}", "'[' that does not close a list is quoted"),
    case("star.md", agent("star", "*alias value"), f"star: *alias value {ALL}", "an undefined alias is quoted"),
    case("amp.md", agent("amp", "&anchor value"), f"amp: value {ALL}", "a valid anchor is YAML, not repaired"),
    case("hash.md", agent("hash", "Fixes C# code # a comment"), f"hash: Fixes C# code {ALL}",
         "' #' starts a comment in valid YAML"),
    case("tabs.md", agent("tabs", "tab indented: yes", "subagents:\n\tmax_tokens: 5\n"),
         f"tabs: tab indented: yes {ALL}", "leading tabs become two spaces each in the retry"),
    case("colon-crlf.md", agent("colon-crlf", "Use when: asked").replace("\n", "\r\n"), None,
         "the repair skips lines that end in CR (JavaScript's '.' stops at \\r)", ours="loads"),
    case("digit-key.md", agent("digit-key", "d", "x1: a: b\n"), None, "only keys of letters, '_' and '-' are repaired"),
    case("unfixable.md", agent("unfixable", "foo: bar\n  more: x"), None, "a block the repair cannot fix is skipped"),
    # --- names: any text, except a leading '-', a ':' or more than 256 characters ---
    case("dotted.md", agent("powershell-5.1-expert", "dotted name"), f"powershell-5.1-expert: dotted name {ALL}",
         "dots are allowed"),
    case("space-name.md", agent("My Agent", "spaced name"), f"My Agent: spaced name {ALL}", "spaces are allowed"),
    case("unicode.md", agent("café-helper", "unicode name"), f"café-helper: unicode name {ALL}",
         "non-ASCII is allowed"),
    case("padded.md", agent("'  padded  '", "padded name"), f"  padded  : padded name {ALL}", "names are not trimmed"),
    case("underscore.md", agent("_private", "underscore start"), f"_private: underscore start {ALL}",
         "a leading '_' is allowed"),
    case("reserved.md", agent("get_run", "one of our own tool names"), f"get_run: one of our own tool names {ALL}",
         "our tool names mean nothing to Claude Code"),
    case("long65.md", agent("a" * 65, "65 characters"), f"{'a' * 65}: 65 characters {ALL}", "65 characters is fine"),
    case("long300.md", agent("b" * 300, "300 characters"), None, "more than 256 characters is refused"),
    case("colon-name.md", agent("'plugin:agent'", "colon"), None, "':' is kept for plugin namespaces"),
    case("colon-name-repaired.md", agent("ns: agent", "colon"), None, "the repair quotes it, then ':' is refused"),
    case("fullwidth-colon.md", agent("'full\uff1awidth'", "fullwidth colon"), None, "':' is checked after NFKC"),
    case("dash-name.md", agent("-bad", "dash"), None, "a leading '-' is refused"),
    case("number-name.md", agent("123", "number"), None, "a name that YAML reads as a number is refused"),
    # --- description and files that are not agents ---
    case("no-name.md", "---\ndescription: has no name\n---\nBody.\n", None, "no name: skipped"),
    case("empty-frontmatter.md", "---\n---\nNotes.\n", None, "no name: skipped"),
    case("README.md", "# Agents\n\nSome notes.\n", None, "no frontmatter: skipped"),
    case("no-description.md", "---\nname: no-description\n---\nBody.\n", None, "no description: refused"),
    case("list-description.md", agent("list-description", "[a, b]"), None, "a description that is not text: refused"),
    case("octal.md", agent("octal", "0o17"), None, "YAML 1.2: 0o17 is a number, so no description"),
    case("yes.md", agent("yes-description", "yes"), f"yes-description: yes {ALL}", "YAML 1.2: yes is text"),
    case("date.md", agent("date-description", "2026-03-01"), f"date-description: 2026-03-01 {ALL}",
         "YAML 1.2: a date is text"),
    case("blank.md", agent("blank-description", "'   '"), "blank-description:     (Tools: All tools)",
         "a blank description is taken", ours="rejects"),
    case("newline.md", agent("newline", "line one\\nline two"), f"newline: line one\nline two {ALL}",
         "a written \\n becomes a line break"),
    case("triple.md", agent("triple", "a --- b"), f"triple: a {ALL}",
         "the block ends at the first '---', mid-line too"),
    # --- tools, maxTurns, model and other values: never a reason to skip a file ---
    case("tools-empty.md", agent("tools-empty", "d", "tools:\n"), f"tools-empty: d {ALL}",
         "listed as All tools, but runs with none"),
    case("tools-map.md", agent("tools-map", "d", "tools: {Read: true}\n"), f"tools-map: d {ALL}",
         "a mapping: runs with none"),
    case("tools-star.md", agent("tools-star", "d", 'tools: "*"\n'), f"tools-star: d {ALL}", "'*' is every tool"),
    case("tools-space.md", agent("tools-space", "d", "tools: Read Grep Glob\n"),
         "tools-space: d (Tools: Read, Grep, Glob)", "spaces separate tools"),
    case("tools-mixed.md", agent("tools-mixed", "d", "tools: Read, Bash(git diff:*) Grep\n"),
         "tools-mixed: d (Tools: Read, Bash(git diff:*), Grep)", "except inside parentheses"),
    case("tools-list.md", agent("tools-list", "d", "tools: [Read Grep, Glob]\n"),
         "tools-list: d (Tools: Read, Grep, Glob)", "list items are split too"),
    case("max-turns-word.md", agent("max-turns-word", "d", "maxTurns: many\n"), f"max-turns-word: d {ALL}",
         "a bad maxTurns is ignored"),
    case("max-turns-text.md", agent("max-turns-text", "d", "maxTurns: '5'\n"), f"max-turns-text: d {ALL}",
         "maxTurns as text is read as a number"),
    case("max-turns-one.md", agent("max-turns-one", "d", "tools: Read\nmaxTurns: 1 turn\n"),
         "max-turns-one: d (Tools: Read)", "maxTurns text reads like parseInt: '1 turn' is 1"),
    case("model-number.md", agent("model-number", "d", "model: 5\n"), f"model-number: d {ALL}",
         "a model that is not text is ignored"),
    case("bad-values.md", agent("bad-values", "d", "color: plaid\npermissionMode: bogus\nbackground: maybe\n"),
         f"bad-values: d {ALL}", "bad enum values are ignored"),
    # --- which files in a folder ---
    case("dup-a.md", agent("dup", "from a"), None, "two files, one name: the later path wins"),
    case("dup-b.md", agent("dup", "from b"), f"dup: from b {ALL}", "two files, one name: the later path wins"),
    case(".hidden.md", agent("hidden-file", "d"), f"hidden-file: d {ALL}", "hidden files are read"),
    case(".hidden-folder/x.md", agent("hidden-folder", "d"), f"hidden-folder: d {ALL}", "hidden folders are read"),
    case("team/sub/deep.md", agent("deep", "d"), f"deep: d {ALL}", "folders are read at any depth"),
    case("upper.MD", agent("upper-extension", "d"), None, "only names ending in .md"),
    case("big.md", agent("big", "d") + "x" * (1024 * 1024), None, "a file over 1 MiB is skipped"),
    case("ignored.md", agent("git-ignored", "d"), f"git-ignored: d {ALL}", ".gitignore does not hide agent files"),
    Case("R/shared-agents/l.md", agent("linked-folder", "d"), f"linked-folder: d {ALL}",
         "a symlinked folder is followed (link: .claude/agents/linked)"),
    Case("R/target.md", agent("linked-file", "d"), f"linked-file: d {ALL}",
         "a symlinked file is read (link: .claude/agents/link.md)"),
    # --- which folders: every .claude/agents from the working directory up to the repository root ---
    case("shared.md", agent("shared", "from the repository root"), None, "the closest folder wins"),
    Case(f"{PKG_AGENTS}/shared.md", agent("shared", "from pkg"), f"shared: from pkg {ALL}", "the closest folder wins"),
    Case(f"{PKG_AGENTS}/pkg-only.md", agent("pkg-only", "d"), f"pkg-only: d {ALL}", "every folder up to the root"),
    Case(".claude/agents/outside.md", agent("outside-repository", "d"), None, "the walk stops at the repository root"),
)  # fmt: skip
LINKS = {f"{AGENTS}/linked": "../../shared-agents", f"{AGENTS}/loop": ".", f"{AGENTS}/link.md": "../../target.md"}


def build_project(base: Path) -> Path:
    """Write every case under `base`; return the folder to run from."""
    for item in CASES:
        path = base / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.text.encode())
    for link, target in LINKS.items():
        os.symlink(target, base / link)
    (base / "R" / ".gitignore").write_text(".claude/agents/ignored.md\n")
    subprocess.run(["git", "init", "-q", str(base / "R")], check=True)
    start = base / RUN_FROM
    start.mkdir(parents=True)
    return start


def listed_lines() -> set[str]:
    return {c.listed for c in CASES if c.listed is not None}
