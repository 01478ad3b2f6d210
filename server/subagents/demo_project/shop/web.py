"""The admin search page: `GET /admin/users?q=...`."""

import sqlite3

from shop.users import find_user


def search(db: sqlite3.Connection, params: dict[str, str]) -> list[dict[str, str]]:
    """Answer the search box with the matching users, as JSON-ready rows."""
    rows = find_user(db, params.get("q", ""))
    return [{"id": str(row[0]), "name": row[1], "email": row[2]} for row in rows]
