"""The incident-topic map (bot/workflow/incidents.py): words find their topic; a look-alike blocks
only its own topic."""

from bot.workflow.incidents import Incidents, incidents


def test_the_shipped_map_finds_the_topics_of_plain_reports() -> None:
    found = incidents()
    assert found.of("园区施工把电缆挖断了，我们厂跟着停电了") == {"power_cut"}
    assert "water_cut" in found.of("城关镇东区从早上就停水了，没有通知")
    assert "gas_cut" in found.of("十八里镇天然气管道今天上午停气了")
    assert found.of("这个月电费怎么这么高") == set()


def test_a_look_alike_blocks_its_own_topic_only() -> None:
    topics = Incidents(
        {"power": (["停电", "来电"], ["去年停电", "来电话"]), "water": (["停水"], ["停电"])}
    )
    assert topics.of("去年停电把变压器打坏了") == set()
    assert topics.of("去年停电，今天又停电了") == {"power"}  # one word outside the look-alike
    assert topics.of("刚才来电话说明天停水") == {"water"}
    assert topics.of("停电又停水") == {"power", "water"}  # 停电 blocks no word of water here
