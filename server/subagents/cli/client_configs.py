"""Where Claude Code and Claude Desktop keep their MCP server entries, and how to change them safely.

Claude Code 2.1 (observed with 2.1.330): local scope is `~/.claude.json` → `projects["<project>"].mcpServers`,
where the project is the git root of the working directory (else the directory itself); user scope is the
top-level `mcpServers` of `~/.claude.json`; project scope is `<project>/.mcp.json`, which Claude Code runs
only once the folder is trusted and the server approved (`enabledMcpjsonServers`). Claude Desktop reads
`claude_desktop_config.json` in a per-OS folder. Every write keeps the other servers and keys as they
were, keeps the file's mode, goes through a temporary file and a rename, and leaves a backup first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from subagents.errors import ConfigError

Scope = Literal["local", "project", "user"]
SCOPES: tuple[Scope, ...] = ("local", "project", "user")
SERVER_NAME = "subagents"


# --- where the files are ---


def templates_dir() -> Path:
    """The `claude_config/` templates: shipped in the wheel, or the repository's own in a source checkout."""
    packaged = Path(str(resources.files("subagents"))) / "claude_config"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "claude_config"


def template_entry(filename: str) -> dict[str, Any]:
    """The `subagents` entry of one template file."""
    path = templates_dir() / filename
    entry = read_json(path).get("mcpServers", {}).get(SERVER_NAME)
    if not isinstance(entry, dict):
        raise ConfigError(f"The template {path} has no mcpServers.{SERVER_NAME} entry; reinstall subagents.")
    return dict(entry)


def home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def claude_json() -> Path:
    """Claude Code's own state file, which holds the local and user scopes."""
    config_dir = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(config_dir) / ".claude.json" if config_dir else home() / ".claude.json"


def project_root(start: Path) -> Path:
    """The folder Claude Code files a project under: the git root of `start`, else `start` itself."""
    start = start.resolve()
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return start
    top = out.stdout.strip()
    return Path(top).resolve() if out.returncode == 0 and top else start


def desktop_config() -> Path:
    """Claude Desktop's config file on this OS."""
    if sys.platform == "darwin":
        return home() / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if sys.platform == "win32":
        return (
            Path(os.environ.get("APPDATA") or home() / "AppData" / "Roaming") / "Claude" / "claude_desktop_config.json"
        )
    return Path(os.environ.get("XDG_CONFIG_HOME") or home() / ".config") / "Claude" / "claude_desktop_config.json"


# --- this installation's command ---


def installed_command() -> list[str]:
    """An absolute command that starts this installation's `subagents`, whatever PATH the client has."""
    import sysconfig

    name = "subagents.exe" if os.name == "nt" else "subagents"
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        script = Path(folder) / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
    return [str(Path(sys.executable).absolute()), "-m", "subagents"]


def source_checkout() -> Path | None:
    """The repository this package runs from, when it is a source checkout (an editable install)."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "server" / "subagents").is_dir() else None


def uvx_command(spec: str | None) -> tuple[list[str], str | None]:
    """`uvx --from SPEC subagents`, with uvx's absolute path when it is on PATH; and a warning when it is not."""
    from subagents import __version__

    checkout = source_checkout()
    source = spec or (str(checkout) if checkout else f"subagents=={__version__}")
    uvx = shutil.which("uvx")
    warning = None if uvx else "uvx is not on PATH here, so the entry names plain `uvx`: install uv (pip install uv)."
    return [uvx or "uvx", "--from", source, "subagents"], warning


# --- reading and writing ---


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path` ({} when it does not exist); a file that is not one is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix it or move it "
            "away, then run this again. Nothing was changed."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds {type(data).__name__}, not a JSON object; nothing was changed.")
    return data


@dataclass(frozen=True)
class Change:
    """One file, before and after; `backup` is where the old file went (None: it did not exist)."""

    path: Path
    before: dict[str, Any]
    after: dict[str, Any]
    backup: Path | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def write_json(change: Change, *, private: bool) -> Change:
    """Back up the old file, then replace it atomically, keeping its mode (0600 for a new private file)."""
    path = change.path
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    mode = 0o600 if private else 0o644
    if path.exists():
        mode = path.stat().st_mode & 0o777
        backup = path.with_name(f"{path.name}.subagents-backup-{datetime.now():%Y%m%d-%H%M%S}")
        shutil.copy2(path, backup)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(change.after, indent=2, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Change(path, change.before, change.after, backup)


def with_server(data: dict[str, Any], keys: tuple[str, ...], name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` whose `mcpServers` under `keys` has `name` set to `entry`, every other key kept."""
    result: dict[str, Any] = json.loads(json.dumps(data))
    node = result
    for key in keys:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    servers = node.get("mcpServers")
    if not isinstance(servers, dict):
        servers = node["mcpServers"] = {}
    servers[name] = entry
    return result


# --- what the clients are configured with ---


@dataclass(frozen=True)
class ConfiguredServer:
    """One `subagents`-like entry a client would start, and where it was found."""

    where: str
    name: str
    entry: dict[str, Any]


def claude_code_keys(scope: Scope, project: Path) -> tuple[Path, tuple[str, ...]]:
    """The file and the keys above `mcpServers` for a Claude Code scope."""
    if scope == "project":
        return project / ".mcp.json", ()
    if scope == "local":
        return claude_json(), ("projects", str(project))
    return claude_json(), ()


def configured_servers(project: Path) -> list[ConfiguredServer]:
    """Every stdio entry that runs subagents, in Claude Code's scopes for `project` and in Claude Desktop."""
    found = []
    places = [(f"Claude Code ({scope} scope)", *claude_code_keys(scope, project)) for scope in SCOPES]
    places.append(("Claude Desktop", desktop_config(), ()))
    for where, path, keys in places:
        try:
            node: Any = read_json(path)
        except ConfigError:
            continue
        for key in keys:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        servers = node.get("mcpServers", {}) if isinstance(node, dict) else {}
        for name, entry in servers.items() if isinstance(servers, dict) else ():
            if isinstance(entry, dict) and runs_subagents(entry):
                found.append(ConfiguredServer(f"{where}: {path}", str(name), entry))
    return found


def runs_subagents(entry: dict[str, Any]) -> bool:
    words = [str(entry.get("command", "")), *map(str, entry.get("args") or [])]
    return any(Path(w).name in ("subagents", "subagents.exe") or w == "subagents" for w in words)


def command_problem(entry: dict[str, Any]) -> str | None:
    """Why a client could not start this entry's command, or None. A bare name is looked up on PATH, but
    the client's PATH is not this shell's: that is the usual "Failed to connect"."""
    command = str(entry.get("command", ""))
    if not command:
        return "the entry has no command"
    if "${" in command:
        return None  # expanded by the client; cannot be checked here
    path = Path(command)
    if not path.is_absolute():
        found = shutil.which(command)
        where = f"found at {found} in this shell" if found else "not found on this shell's PATH either"
        return (
            f"command {command!r} is a bare name, looked up on the PATH the client starts with ({where}); "
            "a client started without your venv cannot find it"
        )
    if not path.is_file():
        return f"command {command} does not exist"
    if not os.access(path, os.X_OK):
        return f"command {command} is not executable"
    return None
