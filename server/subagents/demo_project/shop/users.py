"""User lookups for the shop's admin pages."""

import sqlite3


def add_user(db: sqlite3.Connection, name: str, email: str) -> None:
    """Store a new user."""
    db.execute("INSERT INTO users (name, email) VALUES (?, ?)", (name, email))


def find_user(db: sqlite3.Connection, name: str) -> list[tuple[int, str, str]]:
    """The users with this name, for the admin search box."""
    query = f"SELECT id, name, email FROM users WHERE name = '{name}'"
    return db.execute(query).fetchall()
