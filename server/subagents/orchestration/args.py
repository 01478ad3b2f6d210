"""Each pattern's arguments, checked at the boundary, and the hard ceilings no caller can raise."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from subagents.errors import SubagentsError
from subagents.history.records import RunInput

# Hard ceilings: what a pattern call may ask for at most, whatever the caller says.
MAX_CHILDREN = 16  # fan_out: agents x samples
MAX_SAMPLES = 8
MAX_ROUNDS = 3
MAX_ATTEMPTS = 5
MAX_STAGES = 6
MAX_CANDIDATES = 32
MAX_WORKERS = 8  # team: workers claiming from its queue at once
MAX_TEAM_TASKS = 32  # team: tasks in one queue
DEFAULT_WORKERS = 3
MAX_TASK_CHARS = 100_000
MAX_CONTEXT_CHARS = 400_000
MAX_FILES = 100

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TASK_CHARS)]
AgentName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Stage = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Path = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^[^\x00]+$")]


class PatternInputError(SubagentsError):
    """A pattern call's arguments are unusable; the message names the argument and the fix."""


class PatternArgs(BaseModel):
    """What every pattern takes: the task, background, and files to start from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: Text
    context: Annotated[str, Field(max_length=MAX_CONTEXT_CHARS)] | None = None
    files: tuple[Path, ...] = Field(default=(), max_length=MAX_FILES)

    def run_input(self) -> RunInput:
        return RunInput(task=self.task, context=self.context, files=self.files)

    def extras(self) -> dict[str, Any]:
        """The arguments beyond task, context and files, as recorded with the pattern's run."""
        return self.model_dump(mode="json", exclude={"task", "context", "files"})


class RouteArgs(PatternArgs):
    candidates: tuple[AgentName, ...] | None = Field(default=None, min_length=1, max_length=MAX_CANDIDATES)


class FanOutArgs(PatternArgs):
    agents: tuple[AgentName, ...] = Field(min_length=1, max_length=MAX_CHILDREN)
    samples: int = Field(default=1, ge=1, le=MAX_SAMPLES)
    judge: bool = False

    @model_validator(mode="after")
    def _bounded(self) -> FanOutArgs:
        if len(self.agents) * self.samples > MAX_CHILDREN:
            raise ValueError(
                f"{len(self.agents)} agents x {self.samples} samples is {len(self.agents) * self.samples} runs; "
                f"the ceiling is {MAX_CHILDREN}"
            )
        return self


class DebateArgs(PatternArgs):
    """`question` is the debate's task (the MCP tool and the CLI call it that)."""

    rounds: int = Field(default=1, ge=1, le=MAX_ROUNDS)

    @model_validator(mode="before")
    @classmethod
    def _question(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "question" in raw and "task" not in raw:
            raw = {("task" if k == "question" else k): v for k, v in raw.items()}
        return raw


class PipelineArgs(PatternArgs):
    # Each stage is an agent name, optionally followed by ": what this stage does".
    stages: tuple[Stage, ...] = Field(min_length=1, max_length=MAX_STAGES)

    def parsed_stages(self) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for stage in self.stages:
            agent, sep, instruction = stage.partition(":")
            out.append((agent.strip(), instruction.strip() or None if sep else None))
        return out


class EscalateArgs(PatternArgs):
    junior: AgentName
    senior: AgentName
    rubric: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)] | None = None
    attempts: int = Field(default=3, ge=1, le=MAX_ATTEMPTS)


class TeamTask(BaseModel):
    """One task of a team: the agent that does it, and the task, self-contained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: AgentName
    task: Text


class TeamArgs(PatternArgs):
    """`tasks` are independent; `task` (optional) names the team's goal, `context` and `files` are shared."""

    tasks: tuple[TeamTask, ...] = Field(min_length=1, max_length=MAX_TEAM_TASKS)
    workers: int = Field(default=DEFAULT_WORKERS, ge=1, le=MAX_WORKERS)

    @model_validator(mode="before")
    @classmethod
    def _goal(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and not raw.get("task") and isinstance(raw.get("tasks"), list | tuple):
            raw = {**raw, "task": f"A team of {len(raw['tasks'])} independent tasks."}
        return raw


def parse_args(model: type[PatternArgs], raw: dict[str, Any], pattern: str) -> PatternArgs:
    """The arguments as `model`, or one clear sentence per problem naming the argument."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        reasons = "; ".join(_reason(e) for e in exc.errors()[:4])
        raise PatternInputError(f"Invalid arguments for {pattern}: {reasons}.") from None


def _reason(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "arguments"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"`{where}` is not an argument of this pattern"
    if error["type"] == "missing":
        return f"`{where}` is required"
    return f"`{where}`: {message}"
