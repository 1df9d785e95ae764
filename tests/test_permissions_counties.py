"""The permission matrix across counties, on Telegram (issue 10 item 0): with 尉氏县 and 杞县 in
one deployment, 杞县's team members, coordinators and county admin neither act on nor see a
尉氏县 ticket, while 尉氏县's own do. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.config import Settings
from tests.conftest import ADMIN, COORD, COORD_GROUP, FIRM_A, MEMBER_TECH, TECH_GROUP, World
from tests.dbread import query
from tests.fakes import FakeClock, Sent

pytestmark = pytest.mark.usefixtures("backend")

QX_TECH, QX_COORD, QX_FIN = -2001, -2009, -2002
QX_MEMBER, QX_COORD_USER, QX_ADMIN = 3301, 3501, 3901
NUMBER = "YM-WS-20261127-0001"
POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"
COUNTIES = f"""
[[county]]
code = "weishi"
name = "尉氏县"
prefix = "WS"
towns = ["城关镇", "大营镇"]

[[county]]
code = "qixian"
name = "杞县"
prefix = "QX"
towns = ["城郊乡", "高阳镇"]
admins = ["telegram:{QX_ADMIN}"]
"""

# role -> (user id, the chat the role acts from in groups)
ROLES = {
    "own team": (MEMBER_TECH, TECH_GROUP),
    "own coordinator": (COORD, COORD_GROUP),
    "other county's team": (QX_MEMBER, QX_TECH),
    "other county's coordinator": (QX_COORD_USER, QX_COORD),
    "other county's admin": (QX_ADMIN, QX_COORD),
    "deployment admin": (ADMIN, COORD_GROUP),
}


@pytest.fixture
async def ready(tmp_path: Path, clock: FakeClock) -> AsyncIterator[World]:
    (tmp_path / "counties.toml").write_text(COUNTIES, encoding="utf-8")
    w = World(tmp_path, clock)
    w.settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        bot_token="123456:TEST-TOKEN",
        database_path=tmp_path / "yimi.db",
        admin_ids=[ADMIN],
        counties_file=tmp_path / "counties.toml",
    )
    w.telegram.members[QX_TECH] = {QX_MEMBER}
    w.telegram.members[QX_FIN] = {QX_MEMBER}
    w.telegram.members[QX_COORD] = {QX_COORD_USER, QX_ADMIN}
    await w.start()
    for chat, team in (
        (TECH_GROUP, "tech_industry@weishi"),
        (COORD_GROUP, "coordinator@weishi"),
        (QX_TECH, "tech_industry@qixian"),
        (QX_FIN, "finance@qixian"),
    ):
        await w.say(chat, ADMIN, "管理员", f"/bind {team}")
    await w.say(QX_COORD, QX_ADMIN, "杞县管理员", "/bind coordinator")  # his one county
    # A firm of 尉氏县 registers through its county's link and reports.
    await w.say(FIRM_A, FIRM_A, "张伟", "/start county-weishi")
    for text in ("恒达机械有限公司", "张伟", "13812345678"):
        await w.say(FIRM_A, FIRM_A, "张伟", text)
    await w.press(FIRM_A, FIRM_A, "张伟", w.telegram.last(FIRM_A), "城关镇")
    await w.press(FIRM_A, FIRM_A, "张伟", w.telegram.last(FIRM_A), "跳过")
    await w.say(FIRM_A, FIRM_A, "张伟", POWER)
    await w.press(FIRM_A, FIRM_A, "张伟", w.telegram.last(FIRM_A), "✅ 确认提交")
    yield w
    await w.stop()


def state(w: World) -> tuple[str, str | None, str]:
    (found,) = query(
        w.settings, "SELECT state, claimed_by, team_id FROM tickets WHERE number = ?", (NUMBER,)
    )
    return str(found[0]), found[1], str(found[2])


Action = Callable[[World, int, int], Awaitable[None]]


async def claim(w: World, user: int, chat: int) -> None:
    card = w.telegram.find(TECH_GROUP, NUMBER)
    message = Sent(chat, card.message_id, card.text, card.markup)
    await w.process(w.updates.callback(chat, user, "某人", message, card.data("签收")))


async def view(w: World, user: int, chat: int) -> None:
    await w.say(chat, user, "某人", f"/ticket {NUMBER}")


async def dispatch(w: World, user: int, chat: int) -> None:
    await w.say(chat, user, "某人", f"/dispatch {NUMBER} finance")


async def related(w: World, user: int, chat: int) -> None:
    await w.say(chat, user, "某人", f"/related {NUMBER}")


def saw(w: World, chat: int) -> bool:
    """The ticket view (its text) or its /related list (its header) reached the chat."""
    last = w.telegram.last(chat).text
    return NUMBER in last and ("跳闸" in last or "可能相关的工单" in last)


MATRIX: dict[str, tuple[Action, Callable[[World, int, int], bool], set[str]]] = {
    "claim": (
        claim,
        lambda w, u, c: state(w)[:2] == ("in_progress", f"telegram:{u}"),
        {"own team", "own coordinator", "deployment admin"},
    ),
    "view": (view, lambda w, u, c: saw(w, c), {"own team", "own coordinator", "deployment admin"}),
    "dispatch": (
        dispatch,
        lambda w, u, c: state(w)[2] == "finance",
        {"own coordinator", "deployment admin"},
    ),
    "related": (
        related,
        lambda w, u, c: saw(w, c),
        {"own team", "own coordinator", "deployment admin"},
    ),
}


@pytest.mark.parametrize(
    ("role", "action"),
    [pytest.param(r, a, id=f"{a}-{r}") for a in MATRIX for r in ROLES],
)
async def test_permission_matrix_across_counties(ready: World, role: str, action: str) -> None:
    user, chat = ROLES[role]
    how, happened, allowed = MATRIX[action]
    await how(ready, user, chat)
    assert happened(ready, user, chat) == (role in allowed)
    if role.startswith("other county"):
        # Not a word of the ticket reaches the other county.
        assert "跳闸" not in ready.telegram.texts(chat)


async def test_bindings_and_numbers_are_the_countys(ready: World) -> None:
    bound = query(ready.settings, "SELECT chat_id, county, team_id FROM bindings ORDER BY chat_id")
    assert {(str(c), str(k), str(t)) for c, k, t in bound} >= {
        (f"telegram:{TECH_GROUP}", "weishi", "tech_industry"),
        (f"telegram:{QX_COORD}", "qixian", "coordinator"),
    }
    assert state(ready)[0] == "pending_claim"
    assert NUMBER in ready.telegram.texts(TECH_GROUP)
    assert NUMBER not in ready.telegram.texts(QX_TECH)
