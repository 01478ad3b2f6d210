"""The secrets deny-list: names whose contents must never be sent to a model provider.

Rules are gitignore-style globs, matched case-insensitively (the same file on macOS) against the path
relative to its root. A rule matches a run of path components anywhere, so a matching directory hides
everything beneath it; `dir/**` denies the directory itself too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from subagents.tools.globs import expand_braces, segment_regex

DEFAULT_DENY: tuple[str, ...] = (
    # environment files and generic secret stores
    ".env", ".env.*", "*.env", ".envrc", "secrets.json", "secrets.y*ml", "secrets.toml", "secrets.env", "secrets.ini",
    ".vault-token", ".vault_pass*", ".vault-password*", "*.tfstate", "*.tfstate.*", "*.tfvars", "*.tfvars.json",
    ".terraformrc", "terraform.rc", ".*_history",
    # keys, certificates with keys, keystores
    "*.pem", "*.key", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.p12", "*.pfx", "*.pkcs12", "*.p8",
    "*.ppk", "*.jks", "*.keystore", "*.bks", "*.keytab", "*.kdbx", "*.keychain", "*.keychain-db", "*.ovpn",
    "secring.*",
    # credential files of tools and package managers
    ".netrc", "_netrc", ".git-credentials", ".gitcookies", ".npmrc", ".pypirc", ".pgpass", ".my.cnf",
    ".mylogin.cnf", ".htpasswd", ".htdigest", ".boto", ".s3cfg", ".dockercfg", ".databrickscfg", "rclone.conf",
    "*credentials*.json", "*service-account*.json", "*service_account*.json", "credentials.xml",
    ".docker/config.json", ".kube/config", "kubeconfig", "*.kubeconfig", ".config/gh/hosts.yml", ".config/hub",
    ".cargo/credentials*", ".gem/credentials", ".composer/auth.json", ".m2/settings*.xml",
    ".gradle/gradle.properties", ".config/doctl/config.yaml",
    # whole directories of keys and cloud CLI credentials
    ".git/**", ".ssh/**", ".gnupg/**", ".password-store/**", ".aws/**", ".azure/**", ".config/gcloud/**",
    ".oci/**", ".config/sops/**",
)  # fmt: skip

# Env-file templates list variable names without values: what a reviewer needs to see what is configured.
TEMPLATE_WORDS = frozenset({"example", "sample", "template", "dist", "defaults", "tmpl", "tpl"})

_Rule = tuple[str, tuple[re.Pattern[str], ...]]
_WILD = re.compile(r"[*?\[]")


class DenyList:
    """Compiled rules. Names are casefolded, so `.ENV` is `.env`. A walk pays one cheap test per entry:
    rules' last components as exact names, suffixes (`*.pem`), prefixes (`id_rsa*`) and one regex."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        self._rules: tuple[_Rule, ...] = tuple((p, parts) for p in self.patterns for parts in _rule_parts(p))
        self._depth = max((len(rxs) for _, rxs in self._rules), default=1)
        lasts = {
            alt.removesuffix("/**").strip("/").split("/")[-1].casefold() for p in patterns for alt in expand_braces(p)
        }
        self._exact = frozenset(x for x in lasts if not _WILD.search(x))
        self._suffixes = tuple(x[1:] for x in lasts if x.startswith("*") and not _WILD.search(x[1:]))
        self._prefixes = tuple(x[:-1] for x in lasts if x.endswith("*") and not _WILD.search(x[:-1]))
        others = [x for x in lasts if _WILD.search(x) and x[1:] not in self._suffixes and x[:-1] not in self._prefixes]
        self._others = re.compile("|".join(f"(?:{segment_regex(x)})" for x in others) or "(?!)")

    def rule_for(self, parts: Sequence[str]) -> str | None:
        """The first rule matching `parts` (components below a root) or any of its leading runs."""
        return next(filter(None, (self.tail_rule(parts[:end]) for end in range(1, len(parts) + 1))), None)

    def tail_rule(self, parts: Sequence[str]) -> str | None:
        """The first rule matching a run of components that ends at the last one."""
        if not parts or not self._may_match(name := parts[-1].casefold()) or is_env_template(name):
            return None
        folded = [part.casefold() for part in parts[-self._depth :]]
        for rule, rxs in self._rules:
            tail = folded[len(folded) - len(rxs) :]
            if len(tail) == len(rxs) and all(rx.match(part) is not None for rx, part in zip(rxs, tail, strict=True)):
                return rule
        return None

    def _may_match(self, name: str) -> bool:
        return (
            name in self._exact
            or name.endswith(self._suffixes)
            or name.startswith(self._prefixes)
            or self._others.match(name) is not None
        )


@functools.lru_cache(maxsize=32)
def compiled(patterns: tuple[str, ...]) -> DenyList:
    """One DenyList per rule set, shared: compiling the defaults takes milliseconds, and every run's
    sandbox needs them (a DenyList never changes once built)."""
    return DenyList(patterns)


def is_env_template(name: str) -> bool:
    """`.env.example`, `.env.local.sample`, `example.env`: an env file that is a template."""
    words = name.lower().split(".")
    env_like = name.lower().startswith(".env") or words[-1] == "env"
    return env_like and any(word in TEMPLATE_WORDS for word in words)


def _rule_parts(pattern: str) -> list[tuple[re.Pattern[str], ...]]:
    out = []
    for alternative in expand_braces(pattern):
        parts = alternative.removesuffix("/**").strip("/").split("/")
        out.append(tuple(re.compile(segment_regex(p.casefold())) for p in parts))
    return out
