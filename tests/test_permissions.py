"""Who may do what (WORKFLOW.md, issue 2 point 9), and the token never shows in logs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import (
    ADMIN,
    COORD,
    COORD_GROUP,
    FIN_GROUP,
    FIRM_A,
    FIRM_B,
    MEMBER_FIN,
    MEMBER_TECH,
    OUTSIDER,
    STRAY_GROUP,
    TECH_GROUP,
    World,
)
from tests.dbread import query
from tests.fakes import Sent

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

NUMBER = "YM-20261127-0001"
POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"
# role -> (user id, the chat the role acts from in groups)
ROLES = {
    "firm": (FIRM_A, FIRM_A),
    "other firm": (FIRM_B, FIRM_B),
    "other team": (MEMBER_FIN, FIN_GROUP),
    "non-member": (OUTSIDER, TECH_GROUP),
    "coordinator": (COORD, COORD_GROUP),
    "admin": (ADMIN, TECH_GROUP),
}


@pytest.fixture
async def ready(world: World) -> World:
    await world.bind_all()
    await world.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await world.register(FIRM_B, "绿源食品厂", "李娜", "13987654321", "大营镇")
    await world.say(FIRM_A, FIRM_A, "张伟", POWER)
    await world.press(FIRM_A, FIRM_A, "张伟", world.telegram.last(FIRM_A), "✅ 确认提交")
    return world


def state(w: World) -> tuple[str, int | None]:
    (found,) = query(
        w.settings, "SELECT state, claimed_by FROM tickets WHERE number = ?", (NUMBER,)
    )
    claimer = found[1]  # a qualified id: 'telegram:<user id>'
    return str(found[0]), int(claimer.removeprefix("telegram:")) if claimer else None


async def claim(w: World, user: int, chat: int) -> None:
    card = w.telegram.find(TECH_GROUP, NUMBER)
    message = Sent(chat, card.message_id, card.text, card.markup)
    await w.process(w.updates.callback(chat, user, "某人", message, "v1:claim:1"))


async def claimed(w: World) -> None:
    await claim(w, MEMBER_TECH, TECH_GROUP)


Action = Callable[[World, int, int], Awaitable[None]]


async def view(w: World, user: int, chat: int) -> None:
    await w.say(chat, user, "某人", f"/ticket {NUMBER}")


async def withdraw(w: World, user: int, chat: int) -> None:
    await w.say(user, user, "某人", f"/withdraw {NUMBER}")


async def dispatch(w: World, user: int, chat: int) -> None:
    await w.say(chat, user, "某人", f"/dispatch {NUMBER} finance")


async def resolve(w: World, user: int, chat: int) -> None:
    if state(w)[0] == "pending_claim":
        await claimed(w)
    card = w.telegram.find(TECH_GROUP, NUMBER)
    message = Sent(chat, card.message_id, card.text, card.markup)
    await w.process(w.updates.callback(chat, user, "某人", message, card.data("办结")))
    await w.say(chat, user, "某人", "已处理完毕，线路更换")


async def bind(w: World, user: int, chat: int) -> None:
    await w.say(STRAY_GROUP, user, "某人", "/bind rural")


def bound(w: World) -> bool:
    return bool(query(w.settings, "SELECT 1 FROM bindings WHERE team_id = 'rural'"))


def saw(w: World, chat: int) -> bool:
    return "跳闸" in w.telegram.last(chat).text and NUMBER in w.telegram.last(chat).text


# action -> (how, did it happen?, roles allowed)
MATRIX: dict[str, tuple[Action, Callable[[World, int, int], bool], set[str]]] = {
    "claim": (
        claim,
        lambda w, u, c: state(w) == ("in_progress", u),
        {"coordinator", "admin"},  # from their own bound chat; the team's members: see below
    ),
    "view": (view, lambda w, u, c: saw(w, c), {"firm", "coordinator", "admin"}),
    "withdraw": (withdraw, lambda w, u, c: state(w)[0] == "cancelled", {"firm"}),
    "dispatch": (
        dispatch,
        lambda w, u, c: w.telegram.chat(FIN_GROUP) != [] and NUMBER in w.telegram.texts(FIN_GROUP),
        {"coordinator", "admin"},
    ),
    "resolve": (
        resolve,
        lambda w, u, c: state(w)[0] == "pending_confirm",
        {"coordinator", "admin"},
    ),
    "bind": (bind, lambda w, u, c: bound(w), {"admin"}),
}
CELLS = [(role, action) for action in MATRIX for role in ROLES]


# Known gaps, kept visible: the test fails loudly (strict xfail) once they are fixed.
BUGS: dict[tuple[str, str], str] = {}


def cells() -> list[object]:
    return [
        pytest.param(r, a, id=f"{a}-{r}", marks=[pytest.mark.xfail(strict=True, reason=BUGS[r, a])])
        if (r, a) in BUGS
        else pytest.param(r, a, id=f"{a}-{r}")
        for r, a in CELLS
    ]


@pytest.mark.parametrize(("role", "action"), cells())
async def test_permission_matrix(ready: World, role: str, action: str) -> None:
    user, chat = ROLES[role]
    how, happened, allowed = MATRIX[action]
    await how(ready, user, chat)
    assert happened(ready, user, chat) == (role in allowed)


async def test_the_teams_own_member_claims_and_the_claimer_resolves(ready: World) -> None:
    await claimed(ready)
    assert state(ready) == ("in_progress", MEMBER_TECH)
    await resolve(ready, MEMBER_TECH, TECH_GROUP)
    assert state(ready)[0] == "pending_confirm"


async def test_the_token_never_appears_in_logs_or_alerts(
    ready: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    w = ready
    await claimed(w)
    w.telegram.fail_next.append(("sendMessage", 500, "Internal Server Error", None))
    await w.say(FIRM_A, FIRM_A, "张伟", "/ticket " + NUMBER)
    w.telegram.fail_next.append(
        ("sendMessage", 403, "Forbidden: bot was blocked by the user", None)
    )
    await resolve(w, MEMBER_TECH, TECH_GROUP)
    assert caplog.records
    token = w.settings.token()
    secret = token.split(":", 1)[1]
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.exc_info or "")
    for chat in list(w.telegram.messages):
        assert secret not in w.telegram.texts(chat)
