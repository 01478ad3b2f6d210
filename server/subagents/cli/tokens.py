"""`subagents tokens new|hash NAME`: a line for the tokens file (`serve --auth-tokens FILE`).

`new` makes a random token and prints it once, for the user it belongs to, with the line that goes in
the file. `hash` reads a token you already have from stdin (never from the command line, where `ps`
shows it) and prints its line. The file holds only the hash.
"""

from __future__ import annotations

import argparse
import sys

from subagents.errors import ConfigError
from subagents.tokens import check_name, new_token, token_line


def add_tokens_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tokens new|hash` to a `subagents` subparsers object."""
    tokens = sub.add_parser("tokens", help="make lines for the tokens file of `serve --auth-tokens`")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True)
    new = tokens_sub.add_parser("new", help="a new random token for NAME, and its line for the tokens file")
    new.add_argument("name", help="the principal: the user or service the token is for")
    new.set_defaults(handler=cmd_tokens_new)
    hashed = tokens_sub.add_parser("hash", help="the tokens-file line for a token read from stdin")
    hashed.add_argument("name", help="the principal: the user or service the token is for")
    hashed.set_defaults(handler=cmd_tokens_hash)


def cmd_tokens_new(args: argparse.Namespace) -> int:
    check_name(args.name)
    token = new_token()
    print(f"token for {args.name} (give it to them; it is not kept anywhere): {token}", file=sys.stderr)
    print(token_line(args.name, token))
    return 0


def cmd_tokens_hash(args: argparse.Namespace) -> int:
    check_name(args.name)
    if sys.stdin.isatty():
        print("paste the token, then press Enter:", file=sys.stderr)
    token = sys.stdin.readline().strip()
    if not token:
        raise ConfigError('No token on stdin: pipe it in, e.g. `printf %s "$TOKEN" | subagents tokens hash NAME`.')
    print(token_line(args.name, token))
    return 0
