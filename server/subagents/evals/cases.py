"""An eval file: the cases that pin an agent's prompt, read from YAML beside the agent, with clear errors.

agent: security-reviewer
cases:
  - name: sql-injection-in-user-search
    task: Review shop/users.py for security problems.
    fixture: fixtures/shop            # a folder, copied as the project the agent reads
    start_files: [shop/users.py]      # the call's `files`
    expect:
      mentions: ["shop/users.py:13", "SQL injection"]
      not_contain: ["no findings"]
      max_turns: 6
      tools_used: [Read]
    judge: {rubric: "Names the injectable parameter and gives a parameterised query.", threshold: 7}
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from subagents.errors import ConfigError

MAX_FILE_BYTES = 1_000_000
RunStatus = Literal["completed", "failed", "cancelled", "budget_exceeded"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Expectations(_Strict):
    """Deterministic checks on one answer. Text checks read the report (and a writer's diff), ignoring case."""

    mentions: tuple[str, ...] = ()  # every one must appear
    not_contain: tuple[str, ...] = ()  # none may appear
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema")  # inline, or a JSON/YAML file
    max_turns: int | None = Field(default=None, ge=1)
    tools_used: tuple[str, ...] = ()  # each must be called at least once
    tools_not_used: tuple[str, ...] = ()
    status: RunStatus = "completed"


class Judged(_Strict):
    """A rubric a judge model scores from 0 to 10; the answer passes at `threshold` or above."""

    rubric: str = Field(min_length=1)
    threshold: int = Field(default=7, ge=0, le=10)


class Case(_Strict):
    name: str = Field(min_length=1, max_length=120, pattern=r"^[\w.:-]+( [\w.:-]+)*$")
    task: str = Field(min_length=1)
    context: str | None = None
    fixture: str | None = None  # a folder beside the eval file, copied as the project
    files: dict[str, str] = Field(default_factory=dict)  # path -> content, written into the project
    start_files: tuple[str, ...] = ()
    expect: Expectations = Expectations()
    judge: Judged | None = None
    pass_rate: float | None = Field(default=None, ge=0, le=1)  # of the repeats; default: the file's

    @field_validator("files")
    @classmethod
    def _relative_paths(cls, files: dict[str, str]) -> dict[str, str]:
        for name in files:
            path = PurePosixPath(name)
            if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
                raise ValueError(f"file {name!r} must be a relative path inside the project, without '..'")
        return files


class EvalFile(_Strict):
    agent: str = Field(min_length=1)
    description: str | None = None
    fake_responder: str | None = None  # module:function or file.py:function, for --model fake
    judge_model: str | None = None  # the judge's model (alias or id); default: the server's default model
    pass_rate: float = Field(default=1.0, ge=0, le=1)
    cost_note: str | None = None  # what one repeat cost on a real model, for people reading the file
    cases: tuple[Case, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> EvalFile:
        names = [case.name for case in self.cases]
        if duplicate := next((n for n in names if names.count(n) > 1), None):
            raise ValueError(f"two cases are named {duplicate!r}; give each case its own name")
        return self


class LoadedEval(BaseModel):
    """An eval file as read, with the folder its relative paths start from."""

    model_config = ConfigDict(frozen=True)

    path: Path
    spec: EvalFile

    @property
    def base(self) -> Path:
        return self.path.parent

    def required_rate(self, case: Case) -> float:
        return self.spec.pass_rate if case.pass_rate is None else case.pass_rate

    def schema_for(self, case: Case) -> dict[str, Any] | None:
        """The case's JSON schema, read from its file when it names one."""
        schema = case.expect.schema_
        if schema is None or isinstance(schema, dict):
            return schema
        value = _read_data(self.base / schema, f"case {case.name!r}: schema file")
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: case {case.name!r}: schema file {schema} must hold a JSON object")
        return value


def load_eval(path: Path) -> LoadedEval:
    """The eval file at `path`, checked: a bad file raises ConfigError with one sentence per problem."""
    raw = _read_data(path, "eval file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: an eval file is a YAML mapping with `agent:` and `cases:`, not a {_kind(raw)}")
    try:
        spec = EvalFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_reasons(exc, raw)}") from None
    loaded = LoadedEval(path=path.resolve(), spec=spec)
    for case in spec.cases:
        if case.fixture is not None and not (loaded.base / case.fixture).is_dir():
            raise ConfigError(
                f"{path}: case {case.name!r}: fixture {case.fixture!r} is not a folder beside the eval file "
                f"(looked for {loaded.base / case.fixture})"
            )
        loaded.schema_for(case)  # a missing or broken schema file is said now, before any run
    return loaded


def _read_data(path: Path, what: str) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what} {path} is larger than 1 MB; split it into several files")
    try:
        text = data.decode("utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    except (yaml.YAMLError, ValueError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{what} {path} is not valid YAML{where}: {problem}") from None


def _reasons(exc: ValidationError, raw: dict[str, Any]) -> str:
    """Each problem as `where: what`, the case named by its name rather than its index."""
    sentences = []
    errors = exc.errors()
    in_cases = any(len(e["loc"]) > 1 and e["loc"][0] == "cases" for e in errors)
    # A case that failed also counts as missing: say only what is wrong with it.
    errors = [e for e in errors if not (in_cases and e["loc"] == ("cases",) and e["type"] == "too_short")]
    for error in errors[:5]:
        location = list(error["loc"])
        where = []
        if location[:1] == ["cases"] and len(location) > 1 and isinstance(location[1], int):
            cases = raw.get("cases")
            case = cases[location[1]] if isinstance(cases, list) and location[1] < len(cases) else None
            name = case.get("name") if isinstance(case, dict) else None
            where.append(f"case {name!r}" if name else f"case {location[1] + 1}")
            location = location[2:]
        where += [".".join(str(part) for part in location)] if location else []
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key (the keys are: {_known_keys(list(error['loc']))})"
        elif error["type"] == "too_short" and error["loc"] == ("cases",):
            message = "no cases; give at least one, each with a name and a task"
        sentences.append(f"{', '.join(where) or 'the file'}: {message}")
    more = len(errors) - len(sentences)
    return "; ".join(sentences) + (f"; and {more} more" if more > 0 else "") + "."


def _known_keys(location: list[Any]) -> str:
    """The keys allowed where an unknown one was found (`location` ends with the unknown key)."""
    path = [part for part in location[:-1] if not isinstance(part, int)]
    models: dict[tuple[str, ...], type[BaseModel]] = {
        (): EvalFile,
        ("cases",): Case,
        ("cases", "expect"): Expectations,
        ("cases", "judge"): Judged,
    }
    model = models.get(tuple(path), EvalFile)
    return ", ".join(field.alias or name for name, field in model.model_fields.items())


def _kind(value: Any) -> str:
    return "list" if isinstance(value, list) else "empty file" if value is None else type(value).__name__
