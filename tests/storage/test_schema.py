"""One migration history for both backends: a new database starts from the baseline script,
an old SQLite file takes the numbered migrations; both roads must end at the same schema."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

from bot.storage.db import Database, latest_version


def _schema(path: Path) -> dict[str, object]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        found: dict[str, object] = {"version": conn.execute("PRAGMA user_version").fetchone()[0]}
        for table in tables:
            indexes = {
                name: (unique, partial, [c[2] for c in conn.execute(f"PRAGMA index_info({name})")])
                for _, name, unique, _, partial in conn.execute(f"PRAGMA index_list({table})")
            }
            found[table] = {
                "columns": [r[1:] for r in conn.execute(f"PRAGMA table_info({table})")],
                "indexes": indexes,
                "keys": sorted(r[2:5] for r in conn.execute(f"PRAGMA foreign_key_list({table})")),
            }
        found["triggers"] = sorted(
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        )
        return found
    finally:
        conn.close()


async def test_the_baseline_and_the_numbered_migrations_make_the_same_schema(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "fresh.db"
    await (await Database.open(fresh)).close()

    # An old file: the numbered migrations up to the baseline's version, one by one.
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    migrations = resources.files("bot.storage.migrations")
    baseline_sql = migrations.joinpath("baseline.sql").read_text("utf-8")
    baseline_version = int(baseline_sql.split("-- version: ", 1)[1].split()[0])
    for entry in sorted(migrations.iterdir(), key=lambda e: e.name):
        number = entry.name[:4]
        if number.isdigit() and int(number) <= baseline_version:
            conn.executescript(
                f"BEGIN;\n{entry.read_text('utf-8')}\nPRAGMA user_version = {int(number)};\nCOMMIT;"
            )
    conn.close()
    await (await Database.open(old)).close()

    a, b = _schema(fresh), _schema(old)
    assert a["version"] == b["version"] == latest_version()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
