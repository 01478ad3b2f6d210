"""The offline demo model: deterministic answers in each bundled agent's own output shape.

It reads every file the task names (one Read a turn, as a careful model would), looks for a few
well-known flaws in what it read (SQL built from strings, shell=True, eval, pickle, hard-coded secrets,
TLS checks off), and answers in the shape the agent's system prompt asks for: the security reviewer's
findings, the test writer's test files (it writes one), the router's JSON, the judge's verdict. Any
other agent gets a plain report. It is pattern matching, not a review, and every answer says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from subagents.providers.fake_schema import sample_instance
from subagents.providers.fake_server import RecordedRequest, Reply, content_blocks, content_text, tool_result

DEMO_NOTE = "This is the offline demo model, not a real review: set ANTHROPIC_API_KEY for real reviews."
# A path with a directory part and an extension: src/app.py, ./x.py, /abs/path.py (not URLs).
_PATH = re.compile(r"(?<![\w/:.~-])~?/?(?:[\w.-]+/)+[\w.-]+\.[A-Za-z0-9]+(?![\w/])")
# A bare file name (README.md): a stem of two or more characters and a lettered extension, so that
# "e.g." and "v1.2" are not taken for files.
_BARE_NAME = re.compile(r"(?<![\w/:.~-])[\w-]{2,}(?:\.[\w-]+)*\.[A-Za-z][A-Za-z0-9]{0,4}(?![\w/])(?!\.\w)")
_NUMBERED = re.compile(r"^\s*(\d+)\t(.*)$")
_DEF = re.compile(r"^def ([a-z_]\w*)\((.*)\)")


@dataclass(frozen=True)
class Flaw:
    severity: str
    title: str
    pattern: re.Pattern[str]
    exploit: str
    fix: str


FLAWS = (
    Flaw(
        "HIGH",
        "SQL injection",
        re.compile(
            r"""f["'].*\b(SELECT|INSERT|UPDATE|DELETE)\b.*\{|\b(SELECT|INSERT|UPDATE|DELETE)\b.*["']\s*(%|\+)"""
        ),
        "a caller who controls the interpolated value sends `' OR '1'='1` and reads every row; "
        "`'; DROP TABLE users; --` on a driver that runs several statements",
        'pass the value as a parameter: `db.execute("... WHERE name = ?", (name,))`',
    ),
    Flaw(
        "HIGH",
        "OS command injection",
        re.compile(r"shell\s*=\s*True|os\.system\("),
        "a value with `; rm -rf ~` in it runs as a second command",
        'pass an argument list without a shell: `subprocess.run(["prog", arg], check=True)`',
    ),
    Flaw(
        "HIGH",
        "Code execution through eval",
        re.compile(r"\beval\(|\bexec\("),
        "input such as `__import__('os').system('id')` runs as Python",
        "parse the value instead (`ast.literal_eval`, `json.loads`, or an explicit mapping)",
    ),
    Flaw(
        "HIGH",
        "Unsafe deserialization",
        re.compile(r"pickle\.loads?\(|yaml\.load\((?!.*SafeLoader)"),
        "a crafted payload runs code while it is loaded",
        "use `json`, or `yaml.safe_load`, for data from outside",
    ),
    Flaw(
        "MEDIUM",
        "Hard-coded secret",
        re.compile(r"""(?i)(api[_-]?key|secret|token|passw(or)?d)\s*=\s*["'][^"']{8,}["']"""),
        "anyone with the source, or its history, has the credential",
        "read it from the environment or a secret store, and rotate the exposed one",
    ),
    Flaw(
        "MEDIUM",
        "TLS verification disabled",
        re.compile(r"verify\s*=\s*False"),
        "anyone on the network path can read and change the traffic",
        "drop `verify=False`; pass a CA bundle if the server's certificate is private",
    ),
)


@dataclass(frozen=True)
class Finding:
    flaw: Flaw
    path: str
    line: int
    code: str
    function: str | None


@dataclass(frozen=True)
class Reading:
    """What the conversation holds: the files read (path → numbered lines) and the user's own text."""

    files: dict[str, list[tuple[int, str]]]
    errors: list[str]
    task: str


def demo_responder(request: RecordedRequest) -> Reply:
    """Read every file the user's text names, one a turn, then answer in the agent's own output shape."""
    if "Read" in request.tool_names:
        asked = {str(_args(call).get("file_path")) for call in _tool_calls(request).values()}
        for path in mentioned_paths(request):
            if path not in asked:
                return _tool_use("Read", {"file_path": path})
    reading = read_conversation(request)
    schema = request.output_schema
    if schema is not None:  # an agent that declares its answer's JSON: answer in exactly that
        keys = set(schema.get("properties") or {})
        shaped = next((answer for key, answer in JSON_SHAPES if key in keys), None)
        if shaped is not None:
            return _text(json.dumps(shaped(reading)))
        return _text(json.dumps(sample_instance(schema, _generic_text(reading))))
    shape = next((answer for marker, answer in SHAPES if marker in request.system_text), generic_report)
    return shape(request, reading)


def _tool_use(name: str, args: dict[str, object]) -> Reply:
    return Reply(content=({"type": "tool_use", "id": None, "name": name, "input": args},), stop_reason="tool_use")


def _text(text: str) -> Reply:
    return Reply(content=({"type": "text", "text": text},))


def mentioned_paths(request: RecordedRequest) -> list[str]:
    """Paths in the user's own text blocks; tool results are file contents, not requests."""
    found = [path for t in _user_texts(request) for pattern in (_PATH, _BARE_NAME) for path in pattern.findall(t)]
    return list(dict.fromkeys(found))


def _user_texts(request: RecordedRequest) -> list[str]:
    texts = []
    for message in request.messages:
        if message.get("role") == "user":
            blocks = content_blocks(message.get("content"))
            texts += [content_text([b]) for b in blocks if b.get("type") == "text"]
            if isinstance(message.get("content"), str):
                texts.append(str(message["content"]))
    return texts


def _tool_calls(request: RecordedRequest) -> dict[str, dict[str, object]]:
    blocks = [b for m in request.messages if m.get("role") == "assistant" for b in content_blocks(m.get("content"))]
    return {str(b.get("id")): b for b in blocks if b.get("type") == "tool_use"}


def _args(call: dict[str, object] | None) -> dict[str, object]:
    args = (call or {}).get("input")
    return args if isinstance(args, dict) else {}


def read_conversation(request: RecordedRequest) -> Reading:
    calls = _tool_calls(request)
    files: dict[str, list[tuple[int, str]]] = {}
    errors = []
    for message in request.messages:
        for block in content_blocks(message.get("content")) if message.get("role") == "user" else []:
            if block.get("type") != "tool_result":
                continue
            result = tool_result(block)
            call = calls.get(str(result["tool_use_id"]))
            path = str(_args(call).get("file_path") or (call or {}).get("name", "unknown tool"))
            if result["is_error"]:
                errors.append(f"`{path}`: {first_line(result['content'])}")
            else:
                files[path] = numbered_lines(result["content"])
    return Reading(files, errors, "\n".join(_user_texts(request)))


def numbered_lines(content: str) -> list[tuple[int, str]]:
    """Read's `N<TAB>line` output as (N, line); other text as lines numbered from 1."""
    numbered = [(int(m[1]), m[2]) for m in map(_NUMBERED.match, content.splitlines()) if m]
    if numbered:
        return numbered
    plain = [line for line in content.splitlines() if not line.lstrip().startswith("<")]
    return list(enumerate(plain, start=1))


def first_line(content: str) -> str:
    return next((line.strip() for _, line in numbered_lines(content) if line.strip()), "(empty)")[:200]


def findings(reading: Reading) -> list[Finding]:
    found = []
    for path, lines in reading.files.items():
        function = None
        for number, line in lines:
            if match := _DEF.match(line):
                function = match[1]
            for flaw in FLAWS:
                if flaw.pattern.search(line):
                    found.append(Finding(flaw, path, number, line.strip()[:160], function))
    order = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
    return sorted(found, key=lambda f: order[f.flaw.severity])


# --- the shapes ---


def security_report(request: RecordedRequest, reading: Reading) -> Reply:
    """security-reviewer.md's shape: numbered findings, then the summary."""
    found = findings(reading)[:10]
    lines = ["### Findings", ""]
    for i, f in enumerate(found, start=1):
        where = f" in `{f.function}`" if f.function else ""
        lines += [
            f"#### {i}. [{f.flaw.severity}] {f.flaw.title}{where} (confidence: medium)",
            f"- **Location:** `{f.path}:{f.line}`",
            f"- **Code:** `{f.code}`",
            f"- **Exploit:** {f.flaw.exploit}.",
            f"- **Fix:** {f.flaw.fix}.",
            "",
        ]
    if not found:
        lines += ["No findings of medium severity or above.", ""]
    counts = {s: sum(f.flaw.severity == s for f in found) for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW")}
    result = ", ".join(f"{n} {s.lower()}" for s, n in counts.items())
    first = f"the {_lower(found[0].flaw.title)} at `{found[0].path}:{found[0].line}`." if found else "nothing urgent."
    lines += [
        "### Summary",
        f"- **Reviewed:** {_files_read(reading)}.",
        f"- **Result:** `{result}`",
        f"- **Fix first:** {first}",
        "- **Not covered:** anything a pattern cannot see: data flow across files, runtime configuration, "
        "dependency advisories.",
        "",
        f"_{DEMO_NOTE}_",
    ]
    return _text("\n".join(lines))


def security_json(reading: Reading) -> dict[str, object]:
    """security-reviewer's output schema: findings, also_noted, summary."""
    found = findings(reading)[:10]
    counts = {s: sum(f.flaw.severity == s for f in found) for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW")}
    first = f"the {_lower(found[0].flaw.title)} at {found[0].path}:{found[0].line}" if found else "nothing urgent"
    return {
        "findings": [
            {
                "severity": f.flaw.severity.lower(),
                "title": f"{f.flaw.title} in {f.function}" if f.function else f.flaw.title,
                "confidence": "medium",
                "location": f"{f.path}:{f.line}",
                "code": f.code,
                "exploit": f.flaw.exploit,
                "fix": f.flaw.fix,
            }
            for f in found
        ],
        "also_noted": [DEMO_NOTE],
        "summary": {
            "reviewed": _files_read(reading).replace("`", ""),
            "result": ", ".join(f"{n} {s.lower()}" for s, n in counts.items()),
            "fix_first": first,
            "not_covered": "anything a pattern cannot see: data flow across files, runtime configuration, "
            "dependency advisories",
        },
    }


def writer_report(request: RecordedRequest, reading: Reading) -> Reply:
    """test-writer.md's shape; first it writes a test file (in the isolated copy) for the first file read."""
    target = next((p for p in reading.files if p.endswith(".py") and "test" not in p.rsplit("/", 1)[-1]), None)
    functions = [m[1] for _, line in reading.files.get(target or "", []) if (m := _DEF.match(line))]
    test_path = f"tests/test_{target.rsplit('/', 1)[-1].removesuffix('.py')}_demo.py" if target else None
    wrote = any(_args(c).get("file_path") == test_path for c in _tool_calls(request).values())
    bugs = [f for f in findings(reading) if f.path == target]
    if target and functions and "Write" in request.tool_names and not wrote and test_path:
        return _tool_use("Write", {"file_path": test_path, "content": _test_file(target, functions, bugs)})
    suspected = [
        f"- `{f.path}:{f.line}`: {_lower(f.flaw.title)} (`{f.code}`); {f.flaw.fix}." for f in findings(reading)
    ] or ["- None found."]
    pinned = " and an xfail test that pins the SQL injection" if any(_sql_regression(b) for b in bugs) else ""
    created = f"- `{test_path}` (created): a smoke test per public function{pinned}." if wrote else ""
    run = "NOT RUN (this server has no Bash: start it with --allow-bash 'python -m pytest')"
    if "Bash" in request.tool_names:
        run = "NOT RUN (the offline demo model does not run commands)"
    lines = [
        "### Test files",
        created or "- None written.",
        "",
        "### Run",
        f"- **Command:** `python -m pytest {test_path or 'tests'} -q`",
        f"- **Result:** {run}",
        "",
        "### Suspected problems in the code under test",
        *suspected,
        "",
        "### Notes",
        f"- {DEMO_NOTE}",
    ]
    return _text("\n".join(lines))


def _test_file(target: str, functions: list[str], bugs: list[Finding]) -> str:
    module = target.removesuffix(".py").replace("/", ".")
    tests = [f"def test_{name}_is_public() -> None:\n    assert callable({module}.{name})\n" for name in functions]
    tests += [test for bug in bugs if (test := _sql_regression(bug, module))]
    head = f'"""Written by the offline demo model."""\n\nimport sqlite3\n\nimport pytest\n\nimport {module}\n\n\n'
    return head + "\n\n".join(tests)


_SELECT = re.compile(r"SELECT\s+([\w, ]+?)\s+FROM\s+(\w+)", re.IGNORECASE)


def _sql_regression(bug: Finding, module: str = "") -> str | None:
    """For SQL built from an argument: a test that a quote in it stays data (xfail while the bug is there)."""
    select = _SELECT.search(bug.code)
    if bug.flaw.title != "SQL injection" or select is None or bug.function is None:
        return None
    columns = [c.strip() for c in select[1].split(",")]
    table, values = select[2], ", ".join(f"'{c}-1'" for c in columns if c != "id")
    create = ", ".join("id INTEGER PRIMARY KEY" if c == "id" else f"{c} TEXT" for c in columns)
    reason = f"BUG: {bug.function} builds SQL from its argument ({bug.path}:{bug.line})"
    return (
        f'@pytest.mark.xfail(strict=True, reason="{reason}")\n'
        f"def test_{bug.function}_treats_a_quote_as_data() -> None:\n"
        '    db = sqlite3.connect(":memory:")\n'
        f'    db.execute("CREATE TABLE {table} ({create})")\n'
        f'    db.execute("INSERT INTO {table} ({", ".join(c for c in columns if c != "id")}) VALUES ({values})")\n'
        f"    assert {module}.{bug.function}(db, \"' OR '1'='1\") == []\n"
    )


ROUTES = {
    "security-reviewer": ("security", "vulnerab", "injection", "auth", "secret", "exploit", "abuse", "attack", "leak"),
    "test-writer": ("test", "coverage", "regression", "pytest"),
    "debate-judge": ("which of", "position", "proposal", "judge", "verdict", "option a"),
}


def router_answer(request: RecordedRequest, reading: Reading) -> Reply:
    """router.md's shape: one fenced JSON object with route, confidence, reason and task."""
    return _text(f"```json\n{json.dumps(route_json(reading))}\n```")


def route_json(reading: Reading) -> dict[str, object]:
    """router's output schema: route, confidence, reason, task."""
    task = reading.task.lower()
    scores = {name: sum(word in task for word in words) for name, words in ROUTES.items()}
    route, score = max(scores.items(), key=lambda kv: kv[1])
    if score == 0:
        route = "none"
    reason = (
        f"The task's wording ({', '.join(w for w in ROUTES[route] if w in task)}) matches {route}'s description."
        if route != "none"
        else "No candidate's description matches the task."
    )
    return {
        "route": route,
        "confidence": round(min(0.5 + 0.15 * score, 0.95), 2) if route != "none" else 0.6,
        "reason": reason,
        "task": _task_only(reading.task)[:600],
    }


def _task_only(text: str) -> str:
    match = re.search(r"<task>\s*(.*?)\s*</task>", text, re.DOTALL)
    return (match[1] if match else text).strip()


_POSITION = re.compile(r"(?m)^\s*(?:Position\s+)?([A-Z])\s*[:.)-]\s*(.+)$")
_CITATION = re.compile(r"[\w./-]+\.\w+:\d+")


def judge_verdict(request: RecordedRequest, reading: Reading) -> Reply:
    """debate-judge.md's shape: the VERDICT line, the score table, the decisive factor, the reasoning."""
    positions = {label: text for label, text in _POSITION.findall(reading.task)}
    if len(positions) < 2:
        return _text(
            "VERDICT: NEITHER\n\n**Decisive factor:** fewer than two labelled positions were given.\n\n"
            f"**Reasoning:** label each position A, B, ... in context.\n\n_{DEMO_NOTE}_"
        )
    cited = {label: len(_CITATION.findall(text)) for label, text in positions.items()}
    winner = max(sorted(positions), key=lambda label: cited[label])
    rows = [f"| {label} | 3 | {min(1 + 2 * cited[label], 5)} | 3 | 3 |" for label in sorted(positions)]
    lines = [
        f"VERDICT: {winner}",
        "",
        "| Position | Correctness | Evidence | Risk | Cost |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"**Decisive factor:** {winner} cites the most code ({cited[winner]} file:line references).",
        "",
        "**Reasoning:** the demo model scores evidence by the code each position cites; it cannot check correctness.",
        "",
        "**Claims checked:**",
        "- None: the offline demo model does not verify claims.",
        "",
        f"_{DEMO_NOTE}_",
    ]
    return _text("\n".join(lines))


def verdict_json(reading: Reading) -> dict[str, object]:
    """debate-judge's output schema: verdict, scores, decisive_factor, reasoning, claims_checked."""
    positions = {label: text for label, text in _POSITION.findall(reading.task)}
    if len(positions) < 2:
        return {
            "verdict": "NEITHER",
            "scores": [],
            "decisive_factor": "Fewer than two labelled positions were given.",
            "reasoning": f"Label each position A, B, ... in context. {DEMO_NOTE}",
            "claims_checked": [],
        }
    cited = {label: len(_CITATION.findall(text)) for label, text in positions.items()}
    winner = max(sorted(positions), key=lambda label: cited[label])
    scores = [
        {"label": label, "correctness": 3, "evidence": min(1 + 2 * cited[label], 5), "risk": 3, "cost": 3}
        for label in sorted(positions)
    ]
    return {
        "verdict": winner,
        "scores": scores,
        "decisive_factor": f"{winner} cites the most code ({cited[winner]} file:line references).",
        "reasoning": "The demo model scores evidence by the code each position cites; it cannot check "
        f"correctness. {DEMO_NOTE}",
        "claims_checked": [],
    }


def generic_report(request: RecordedRequest, reading: Reading) -> Reply:
    """Any other agent: each file's first line, the errors, and the flaws found, as file:line."""
    return _text(_generic_text(reading))


def _generic_text(reading: Reading) -> str:
    lines = ["## Report (offline demo model)", ""]
    for path, numbered in reading.files.items():
        first = next((text.strip() for _, text in numbered if text.strip()), "(empty)")
        lines.append(f"- `{path}`: {first[:200]}")
    lines += [f"- {error.replace('`: ', '` (error): ', 1)}" for error in reading.errors]
    if not reading.files and not reading.errors:
        lines.append("- No files were read.")
    found = findings(reading)
    if found:
        lines += ["", "Findings:"]
        lines += [f"- `{f.path}:{f.line}`: {_lower(f.flaw.title)}: `{f.code}`. Fix: {f.flaw.fix}." for f in found]
    return "\n".join([*lines, "", DEMO_NOTE])


def _lower(title: str) -> str:
    """`Hard-coded secret` -> `hard-coded secret`, but `SQL injection` stays."""
    return title if title[:2].isupper() else title[:1].lower() + title[1:]


def _files_read(reading: Reading) -> str:
    if not reading.files:
        return "no files (none were named in the task)"
    count = len(reading.files)
    return f"{', '.join(f'`{p}`' for p in reading.files)} ({count} file{'s' * (count > 1)} read)"


# A key of an agent's output schema, and the JSON answer in that shape.
JSON_SHAPES: tuple[tuple[str, Callable[[Reading], dict[str, object]]], ...] = (
    ("findings", security_json),
    ("verdict", verdict_json),
    ("route", route_json),
)
# A marker of the output shape in the system prompt, and the answer in that shape.
SHAPES: tuple[tuple[str, Callable[[RecordedRequest, Reading], Reply]], ...] = (
    ("### Findings", security_report),
    ("### Test files", writer_report),
    ("VERDICT:", judge_verdict),
    ('"route"', router_answer),
)
