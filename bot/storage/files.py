"""The database's files on disk: whether the bot can write them, and the room left.

SQLite in WAL mode writes three files: the database, its `-wal` and its `-shm` (created next to
it when missing, with the database's permissions). A start on a read-only database used to die
with "attempt to write a readonly database", naming no file, and left read-only `-wal` and
`-shm` behind; `unwritable` names the files and the fix before SQLite is asked.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class StorageUnwritable(Exception):
    """The database cannot be written; the message is the one line to print."""


def companions(path: Path) -> list[Path]:
    """The database file and its WAL and shared-memory files."""
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def unwritable(path: Path) -> str | None:
    """One line naming what cannot be written and how to fix it, or None when all can be."""
    if str(path) == ":memory:":
        return None
    stuck = [f for f in companions(path) if f.exists() and not os.access(f, os.W_OK)]
    if stuck:
        names = " ".join(str(f) for f in stuck)
        return (
            f"数据库文件只读，无法写入：{names}；请执行 chmod u+w {names}（或把文件交给运行机器人"
            f"的用户：chown）/ read-only database file(s): {names}; run: chmod u+w {names}"
        )
    folder = path.parent if path.parent != Path("") else Path(".")
    missing = [f for f in companions(path) if not f.exists()]
    if missing and folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"数据库所在目录 {folder} 不可写，无法创建 {missing[0].name}：请执行 chmod u+w {folder}"
            f" / folder {folder} is not writable (SQLite must create {missing[0].name} there): "
            f"run: chmod u+w {folder}"
        )
    return None


def free_bytes(path: Path) -> int | None:
    """Free space on the database's file system (None when its folder does not exist)."""
    folder = path.parent if path.parent != Path("") else Path(".")
    if not folder.exists():
        return None
    return shutil.disk_usage(folder).free
