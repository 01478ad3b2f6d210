"""Where file tools may look: inside the roots, never at secrets, system filesystems or special files.

Everything a tool returns goes to a model provider, and the model's arguments are untrusted (a file
it read can steer them), so every path is resolved through symlinks before any check.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

from subagents.errors import SandboxError

Kind = Literal["file", "dir", "any"]

# Gitignore-style globs, matched case-insensitively against the path relative to its root. A pattern
# matches a run of path components anywhere, so a matching directory hides everything beneath it.
DEFAULT_DENY: tuple[str, ...] = (
    ".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*", "*.p12", "*.pfx",
    ".git/**", ".netrc", ".npmrc", ".pypirc", ".aws/credentials", ".ssh/**", "*credentials*.json",
    "secrets.json", "secrets.y*ml", "secrets.toml", "secrets.env", "secrets.ini", ".docker/config.json", "*.kdbx",
)  # fmt: skip
# Templates that list variable names without values: the files a reviewer needs to see what is configured.
TEMPLATE_NAMES = frozenset({".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults"})
SYSTEM_DIRS: tuple[Path, ...] = (Path("/proc"), Path("/sys"), Path("/dev"))
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv"})
MAX_PATH_CHARS = 4096
# C0/C1 controls and Unicode line separators: a name with these could fake lines in tool output.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_DenyRule = tuple[str, tuple[re.Pattern[str], ...]]


class Sandbox:
    """The roots a subagent may read, and the checks every file tool goes through."""

    def __init__(
        self,
        roots: Sequence[Path],
        *,
        deny: Sequence[str] = DEFAULT_DENY,
        max_read_bytes: int = 256_000,
        max_file_bytes: int = 10_000_000,
        max_walk_entries: int = 100_000,
    ) -> None:
        if not roots:
            raise ValueError("At least one root directory is needed.")
        self.roots: tuple[Path, ...] = tuple(dict.fromkeys(_checked_root(r) for r in roots))
        self.deny: tuple[str, ...] = tuple(deny)
        self.max_read_bytes = max_read_bytes
        self.max_file_bytes = max_file_bytes
        self.max_walk_entries = max_walk_entries
        self._rules: tuple[_DenyRule, ...] = tuple((p, _deny_parts(p)) for p in self.deny)
        # Fast path for the walk: one regex for all one-component rules, tried on the last name.
        singles = [f"(?:{rxs[0].pattern})" for _, rxs in self._rules if len(rxs) == 1]
        self._any_single = re.compile("|".join(singles) or "(?!)", re.IGNORECASE | re.DOTALL)
        self._multi = tuple(r for r in self._rules if len(r[1]) > 1)

    def resolve(self, raw: str, *, kind: Kind = "any") -> Path:
        """The real path `raw` names, or SandboxError saying why the model may not have it."""
        shown = _shown(raw)
        _check_text(raw, shown)
        candidate = Path(raw) if os.path.isabs(raw) else self.roots[0] / raw
        real, lexical = Path(os.path.realpath(candidate)), Path(os.path.normpath(candidate))
        # Lexically too: /proc/self/cwd and /proc/self/root are links that lead out of /proc.
        system = _system_dir(real) or _system_dir(lexical)
        if system is not None:
            raise SandboxError(f'Refused: "{shown}" is under {system}, a system filesystem that is never readable.')
        if self._root_of(real) is None:
            roots = ", ".join(str(r) for r in self.roots)
            raise SandboxError(
                f'Refused: "{shown}" resolves outside the allowed roots ({roots}). '
                "Only files under the roots can be read."
            )
        # The lexical path counts too: a link named .env is refused even if it points elsewhere.
        for path in (real, lexical):
            rule = self._pattern_rule(path)
            if rule is not None:
                raise SandboxError(
                    f'Refused: "{shown}" matches the secrets deny-list ({rule}); secrets are never sent to the model.'
                )
        _check_kind(real, shown, kind)
        return real

    def display(self, path: Path) -> str:
        """The path as the model sees it: relative to the root when there is one root, else absolute."""
        if len(self.roots) == 1 and path.is_relative_to(self.roots[0]):
            return path.relative_to(self.roots[0]).as_posix() or "."
        return str(path)

    def is_denied(self, path: Path) -> bool:
        """True if `path` (absolute, or relative to the first root) must not be shown to the model."""
        return self.deny_rule(path) is not None

    def deny_rule(self, path: Path) -> str | None:
        """The reason `path` is denied: a deny-list pattern, or a note that it is outside the roots."""
        path = path if path.is_absolute() else self.roots[0] / path
        if _system_dir(path) is not None:
            return "system filesystem"
        if self._root_of(path) is None:
            return "outside the roots"
        return self._pattern_rule(path)

    def iter_files(self, base: Path, pattern: str | None = None) -> FileWalk:
        """Regular files under `base` (a resolved directory), sorted, matching an optional glob."""
        return FileWalk(self, base, pattern)

    def _root_of(self, path: Path) -> Path | None:
        return next((r for r in self.roots if path.is_relative_to(r)), None)

    def _rel_parts(self, path: Path) -> tuple[str, ...]:
        """Components below the outermost root holding `path` (the most to match), or () if none."""
        holders = [path.relative_to(r).parts for r in self.roots if path.is_relative_to(r)]
        return max(holders, key=len, default=())

    def _pattern_rule(self, path: Path) -> str | None:
        parts = self._rel_parts(path)
        return next(filter(None, (self._tail_rule(parts[:end]) for end in range(1, len(parts) + 1))), None)

    def _tail_rule(self, parts: tuple[str, ...]) -> str | None:
        """The first rule matching a run of components that ends at the last one."""
        if not parts or parts[-1].lower() in TEMPLATE_NAMES:
            return None
        for name, rxs in self._rules if self._any_single.fullmatch(parts[-1]) else self._multi:
            tail = parts[len(parts) - len(rxs) :]
            if len(tail) == len(rxs) and rxs[-1].fullmatch(tail[-1]) and all(map(_fullmatch, rxs, tail)):
                return name
        return None


class FileWalk(Iterator[Path]):
    """A bounded, depth-first walk in name order. `truncated` says the entry budget ran out.

    Skips denied paths, the usual bulky directories and names with control characters. It does
    not descend into symlinked directories (no cycles); a symlinked file is yielded as its real
    path, once, and only if that path passes the same checks as `Sandbox.resolve`.
    """

    def __init__(self, sandbox: Sandbox, base: Path, pattern: str | None) -> None:
        self.sandbox = sandbox
        self.base = base
        self.truncated = False
        self._match = glob_matcher(pattern) if pattern else None
        self._seen: set[str] = set()
        self._files = self._walk()

    def __next__(self) -> Path:
        return next(self._files)

    def _walk(self) -> Iterator[Path]:
        # An explicit stack of (entries, components below the root, components below base): deep
        # trees cost no recursion, and parents were already checked, so only the tail is matched.
        top: tuple[str, ...] = ()
        stack = [(iter(_sorted_entries(self.base)), self.sandbox._rel_parts(self.base), top)]
        budget = self.sandbox.max_walk_entries
        while stack:
            entries, parts, rel = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            budget -= 1
            if budget < 0:
                self.truncated = True
                return
            if _CONTROL.search(entry.name) or self.sandbox._tail_rule((*parts, entry.name)):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS and _system_dir(Path(entry.path)) is None:
                    stack.append((iter(_sorted_entries(Path(entry.path))), (*parts, entry.name), (*rel, entry.name)))
            elif self._match is None or self._match("/".join((*rel, entry.name))):
                real = self._readable(entry)
                if real is not None and str(real) not in self._seen:
                    self._seen.add(str(real))
                    yield real

    def _readable(self, entry: os.DirEntry[str]) -> Path | None:
        if entry.is_file(follow_symlinks=False):
            return Path(entry.path)
        if not entry.is_symlink():
            return None  # FIFO, socket, device
        real = Path(os.path.realpath(entry.path))
        if self.sandbox.is_denied(real):
            return None
        try:
            return real if stat.S_ISREG(os.stat(real).st_mode) else None
        except OSError:
            return None


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """A test for relative POSIX paths. Without a slash the pattern matches the file name (like
    ripgrep's --glob); with one it matches the whole path. Supports *, **, ?, [...] and {a,b}."""
    pattern = pattern.removeprefix("./")
    if "/" not in pattern:
        rx = re.compile(_glob_regex(pattern), re.DOTALL)
        return lambda rel: rx.fullmatch(PurePosixPath(rel).name) is not None
    full = re.compile(_glob_regex(pattern), re.DOTALL)
    return lambda rel: full.fullmatch(rel) is not None


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        piece, i = _glob_piece(pattern, i)
        out.append(piece)
    return "".join(out)


def _glob_piece(pattern: str, i: int) -> tuple[str, int]:
    """Translate the glob token at `i`; return its regex and the index after it."""
    if pattern.startswith("**/", i):
        return "(?:.*/)?", i + 3
    if pattern.startswith("**", i):
        return ".*", i + 2
    char = pattern[i]
    if char == "*":
        return "[^/]*", i + 1
    if char == "?":
        return "[^/]", i + 1
    if char == "[":
        end = pattern.find("]", i + 2)
        if end != -1 and "/" not in pattern[i:end]:
            body = pattern[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = re.sub(r"([\\\[\]^])", r"\\\1", body[1:] if negate else body)
            charset = f"[{'^/' if negate else ''}{body}]"
            if _valid_regex(charset):  # a bad range like [z-a] is taken literally
                return charset, end + 1
    if char == "{":
        end = pattern.find("}", i)
        if end != -1 and "{" not in pattern[i + 1 : end]:
            options = pattern[i + 1 : end].split(",")
            return "(?:" + "|".join(_glob_regex(o) for o in options) + ")", end + 1
    return re.escape(char), i + 1


def _fullmatch(rx: re.Pattern[str], text: str) -> bool:
    return rx.fullmatch(text) is not None


def _valid_regex(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


def _checked_root(root: Path) -> Path:
    raw = os.fspath(root)
    if not raw or _CONTROL.search(raw):
        raise ValueError(f"Root {raw!r} is not a usable path.")
    real = Path(os.path.realpath(raw))
    if not real.is_dir():
        raise ValueError(f"Root {raw} does not exist or is not a directory.")
    if _system_dir(real) is not None:
        raise ValueError(f"Root {raw} is inside {_system_dir(real)}, a system filesystem.")
    return real


def _deny_parts(pattern: str) -> tuple[re.Pattern[str], ...]:
    # "dir/**" denies the directory itself as well as its contents.
    parts = pattern.removesuffix("/**").strip("/").split("/")
    return tuple(re.compile(_glob_regex(p), re.IGNORECASE | re.DOTALL) for p in parts)


def _system_dir(path: Path) -> Path | None:
    return next((d for d in SYSTEM_DIRS if path.is_relative_to(d)), None)


def _shown(raw: str) -> str:
    """`raw` safe to quote in a message: short, with control characters escaped."""
    text = raw if len(raw) <= 200 else raw[:200] + "..."
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _check_text(raw: str, shown: str) -> None:
    if not raw:
        raise SandboxError("Refused: the path is empty. Give a file or directory path.")
    if len(raw) > MAX_PATH_CHARS:
        raise SandboxError(f'Refused: "{shown}" is longer than {MAX_PATH_CHARS} characters.')
    if _CONTROL.search(raw):
        raise SandboxError(f'Refused: "{shown}" contains a NUL or control character; paths must be plain text.')
    try:
        os.fsencode(raw)
    except UnicodeError:
        raise SandboxError(f'Refused: "{shown}" is not valid text for a file name.') from None


def _check_kind(real: Path, shown: str, kind: Kind) -> None:
    noun = {"file": "file", "dir": "directory", "any": "file or directory"}[kind]
    try:
        mode = os.stat(real).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise SandboxError(f'No such {noun}: "{shown}" (looked in {real}).') from None
    except OSError as exc:
        raise SandboxError(f'Cannot access "{shown}": {exc.strerror or exc}.') from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise SandboxError(f'Refused: "{shown}" is a {_special_kind(mode)}, not a regular file or directory.')
    if kind == "file" and stat.S_ISDIR(mode):
        raise SandboxError(f'"{shown}" is a directory, not a file. List it with LS or search it with Glob.')
    if kind == "dir" and not stat.S_ISDIR(mode):
        raise SandboxError(f'"{shown}" is a file, not a directory. Read it with Read.')


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file"


def _sorted_entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []  # unreadable directory: skip it, like find and rg do
