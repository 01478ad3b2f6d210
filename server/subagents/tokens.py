"""The tokens file: who may call an HTTP server, one `name: sha256:<hex>` line per token.

The file holds each token's SHA-256, never the token, so reading it (or a backup of it) gives nobody a
way in. A presented token is hashed and compared with every entry in constant time; a name may have
several lines (an old and a new token while clients move over). `subagents tokens new NAME` makes a
token and its line. The server reads the file again on SIGHUP; a file that does not parse then keeps
the entries it had, so a typo never locks everybody out (or lets anybody in).

Nothing here logs or echoes a token, nor a line of the file (a pasted token would be one).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from subagents.errors import ConfigError

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16
# RFC 6750 b64token: the characters a client can put after "Bearer " without quoting.
TOKEN_SYNTAX = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
HASH = re.compile(r"sha256:[0-9a-f]{64}")
LINE_FORMAT = "`name: sha256:<64 hex digits>` (make one with `subagents tokens new NAME`)"


def hash_token(token: str) -> str:
    """The form a token is kept in: `sha256:` and the hex SHA-256 of its UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token() -> str:
    """A fresh random token: 32 bytes, URL-safe, fit for `Authorization: Bearer`."""
    return secrets.token_urlsafe(32)


def token_line(name: str, token: str) -> str:
    """The tokens-file line for `token`, held by `name`."""
    check_name(name)
    check_token(token)
    return f"{name}: {hash_token(token)}"


def check_token(token: str) -> None:
    """Raise ConfigError for a token too short to resist guessing, or one a client cannot send as is."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"The auth token is {len(token)} characters; use at least {MIN_TOKEN_CHARS}, "
            "e.g. the output of `openssl rand -hex 32`."
        )
    if not TOKEN_SYNTAX.fullmatch(token):
        raise ConfigError(
            "The auth token may contain only letters, digits and - . _ ~ + / (then optional "
            "trailing =), so that clients can send it as `Authorization: Bearer <token>`."
        )


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"Principal name {name!r} is not usable: use 1-64 letters, digits and . _ @ -, starting with a letter "
            "or digit."
        )


@dataclass(frozen=True)
class Entry:
    name: str
    digest: str  # the `sha256:<hex>` form


def parse_tokens(text: str, where: str) -> tuple[Entry, ...]:
    """The entries of a tokens file; ConfigError names the line and the format, never its content."""
    entries: list[Entry] = []
    owners: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, digest = (part.strip() for part in line.partition(":"))
        digest = digest.lower()
        if not sep or not NAME.fullmatch(name) or not HASH.fullmatch(digest):
            raise ConfigError(f"Tokens file {where}, line {number}: not {LINE_FORMAT}.")
        if owners.setdefault(digest, name) != name:
            raise ConfigError(
                f"Tokens file {where}, line {number}: the same token is listed for {owners[digest]!r} and {name!r}; "
                "give each principal its own token."
            )
        entries.append(Entry(name, digest))
    return tuple(entries)


class TokensFile:
    """The principals of a tokens file, read at start and again on `reload()` (SIGHUP)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries = self._read()
        if not self.entries:
            log.warning("the tokens file %s lists no token: every HTTP request will get 401", path)

    def _read(self) -> tuple[Entry, ...]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ConfigError(f"Cannot read the tokens file {self.path}: {reason}. Pass --auth-tokens FILE.") from None
        return parse_tokens(text, str(self.path))

    def reload(self) -> bool:
        """Read the file again; on a problem, log it and keep the entries in force. True if reloaded."""
        try:
            entries = self._read()
        except ConfigError as exc:
            log.error("%s Still using the %d tokens read before.", exc, len(self.entries))
            return False
        self.entries = entries
        names = sorted({e.name for e in entries})
        log.warning("reloaded %s: %d tokens for %s", self.path, len(entries), ", ".join(names) or "nobody")
        return True

    def principal_of(self, token: str) -> str | None:
        """The name whose token this is, or None. Compares against every entry, whether or not one matched."""
        digest = hash_token(token)
        found: str | None = None
        for entry in self.entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry.name
        return found
