"""Smoke: a firm registers and reports; the card reaches the team."""

import pytest

from tests.conftest import FIRM_A, TECH_GROUP, World

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")


async def test_register_and_report(world: World) -> None:
    await world.bind_all()
    await world.register(FIRM_A, "尉氏县恒达机械有限公司", "张伟", "13812345678")
    assert "登记完成" in world.telegram.texts(FIRM_A)
    await world.say(FIRM_A, FIRM_A, "张伟", "厂里变压器老是跳闸，生产线停了半天")
    proposal = world.telegram.last(FIRM_A)
    assert "科技工信" in proposal.text, proposal.text
    await world.press(FIRM_A, FIRM_A, "张伟", proposal, "✅ 确认提交")
    print(world.telegram.texts(FIRM_A))
    print(world.telegram.texts(TECH_GROUP))
    card = world.telegram.find(TECH_GROUP, "YM-20261127-0001")
    assert "138****5678" in card.text and "13812345678" not in card.text
