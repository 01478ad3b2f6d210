import sqlite3

from shop.users import add_user


def test_add_user_stores_the_row() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
    add_user(db, "ada", "ada@example.com")
    assert db.execute("SELECT name, email FROM users").fetchall() == [("ada", "ada@example.com")]
