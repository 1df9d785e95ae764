"""The classifier routes real reports right: targets on reports.jsonl and held-out style probes."""

from __future__ import annotations

import json
from pathlib import Path

import jieba
import pytest

from bot.classify.classifier import DOMAIN_IDS, GENERAL, Classification, Classifier, get_classifier
from bot.classify.evaluation import evaluate


def reports_path() -> Path:
    """reports.jsonl, shipped in tests/data (a copy of the 400 labelled reports)."""
    return Path(__file__).resolve().parent / "data" / "reports.jsonl"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return get_classifier()


# Written independently of reports.jsonl, in the held-out set's style: voice input without
# punctuation, homophones (社宝, 待款, 续带), English shop-floor terms, amounts, towns and firms,
# and decoys (a fertiliser plant's smell is environment; a loan for seed is finance).
PROBES: list[tuple[str, str]] = [
    (
        "喂你好我是城关镇那个做纸箱的厂子我们那边今天早上又停电了一停就是四个钟头机器全趴窝了",
        "tech_industry",
    ),
    ("我们车间那个PLC老是报警MES系统也连不上设备厂家说要下礼拜才能来人", "tech_industry"),
    ("想上一套ERP和MES把生产数据管起来听说县里有数字化转型补贴最多能补多少", "tech_industry"),
    ("CNC加工中心电压一波动就报警主轴都烧了一个了这电到底谁管", "tech_industry"),
    ("园区的蒸汽压力老是上不去我们染缸温度升不起来布都染花了", "tech_industry"),
    ("今年想报高新技术企业但是知识产权只有两个实用新型够不够", "tech_industry"),
    ("老板让我问下专精特新申报今年什么时候开始", "tech_industry"),
    ("李家镇宏达塑业这边注塑机一开变压器就跳闸供电所说我们负荷超了要增容多少钱", "tech_industry"),
    ("我们厂的SCADA系统和DCS要升级改造能不能申请技改资金", "tech_industry"),
    ("AGV小车和立体仓库想一起上有没有智能工厂的奖补", "tech_industry"),
    ("天然气公司说下个月要涨价百分之二十我们陶瓷窑炉用气量大受不了", "tech_industry"),
    ("研发费用加机扣除我们财务不会算能不能派人来指导", "tech_industry"),
    ("今天下午三点多突然断电了到现在还没来电冷库里的货要坏了", "tech_industry"),
    ("在银行那边的待款下个月到期了续带能不能办啊资金周转不开", "finance"),
    ("我们想搞个三百万的信用待款不要抵押的有没有", "finance"),
    ("农商行利率给我们上浮了百分之三十太高了能不能帮忙谈谈", "finance"),
    ("老板想三年内IPO上市辅导机构找哪家县里有没有上市奖励", "finance"),
    ("出口的货款怕收不回来想买出口信用保险费率大概多少", "finance"),
    ("承兑汇票贴现利息太高了有没有便宜点的渠道", "finance"),
    ("想贷款五十万买种子和化肥银行说我们合作社没有抵押物", "finance"),
    ("想办个二百万的抵押待款用厂房抵押评估价太低了", "finance"),
    ("银行突然抽贷八百万说我们行业不行我们一天都没逾期过", "finance"),
    ("供应链金融怎么弄核心企业是上市公司我们是它的二级供应商", "finance"),
    ("种植大户想贷款二十万流转土地种水稻有没有贴息", "finance"),
    ("工厂买了财产险仓库漏水货泡了保险公司拖着不理赔", "finance"),
    ("隔壁化肥厂天天晚上排那个味道呛得人睁不开眼睛", "environment"),
    ("我们喷漆房的VOCs在线监测老是超标活性炭刚换的啊", "environment"),
    ("环平报告要做多久啊我们新上一条线怕来不及", "environment"),
    ("排污许可证下个月到期延续要准备啥材料", "environment"),
    ("危废仓库里的废机油堆了快一年了没有单位来收怎么弄", "environment"),
    ("养猪场那个粪水流到河里了下游村民一直在骂", "environment"),
    ("夜里冲床声音太大周围小区的人打电话举报说噪声扰民", "environment"),
    ("ESG报告里的碳排放数据怎么核算有没有第三方机构推荐", "environment"),
    ("我们印染厂的COD和氨氮老是超标污水站要改造", "environment"),
    ("鸡场旁边的饲料厂一到晚上就有股怪味熏得人头疼", "environment"),
    ("环保局来检查说我们危费台账不规范要罚款", "environment"),
    ("RTO焚烧炉运行费用太高了改成活性炭行不行", "environment"),
    ("搅拌站扬尘被拍了照片发到网上环保局要我们三天内整改", "environment"),
    ("碳配额不够用了要去市场上买碳交易怎么操作", "environment"),
    ("员工社宝断了两个月能不能补交啊滞纳金多少", "hr_social"),
    ("厂里缺三十个普工年底订单多人招不到HR愁死了", "hr_social"),
    ("有个工人干了三天就走了现在跑来要工钱还说要去劳动仲裁", "hr_social"),
    ("稳岗返还的钱到现在还没到账我们一个人都没裁", "hr_social"),
    ("想给技术员评个中级职称民营企业有渠道吗", "hr_social"),
    ("员工在车间被机器压伤了手工伤认定怎么走", "hr_social"),
    ("KPI考核扣了员工绩效工资员工说违法要去告我们", "hr_social"),
    ("工人说我们没给他交五险一金要去人社局投诉", "hr_social"),
    ("年底了包工头卷钱跑了四十多个农民工堵在厂门口讨工资", "hr_social"),
    ("想招几个大学生来做技术员有没有见习补贴", "hr_social"),
    ("员工离职不打招呼就走了给公司造成损失可以扣工资吗", "hr_social"),
    ("社保缴费基数今年涨了多少我们HR算不清楚", "hr_social"),
    ("我们那块地的不动产权证到现在还没发下来都三年了", "land"),
    ("厂子想扩建后面那十几亩地是基本农田调不了怎么办", "land"),
    ("去年摘牌的工业用地出让金交了地还没交给我们", "land"),
    ("想租个两千平的标准厂房层高要六米以上有没有", "land"),
    ("容积率要求一点二我们做单层厂房达不到能不能降", "land"),
    ("厂房建好三年了不动产登记一直办不了说是规划验收没过", "land"),
    ("想在红旗镇工业园拿五十亩工业用地招拍挂什么时候", "land"),
    ("我们租的厂房被认定为违建要拆可是我们有租赁合同", "land"),
    ("土地出让合同约定的开工期限过了会不会被收回土地", "land"),
    ("今年的玉米叶子发黄是不是得了什么病要打什么药", "agriculture"),
    ("我们家的葡萄园遭了冰雹三十多亩基本绝收了有没有补助", "agriculture"),
    ("猪价跌成这样母猪还要不要补栏想问问专家", "agriculture"),
    ("收割机的农机补贴什么时候能发下来", "agriculture"),
    ("今年茶叶卖不动收购价压得很低茶农都急死了", "agriculture"),
    ("鱼塘缺氧死了一大片鱼水产站能不能来看看", "agriculture"),
    ("今年小麦赤霉病厉害农技站能不能派人指导打药", "agriculture"),
    ("我们养了两千只羊饲草不够了青贮玉米哪里能买到", "agriculture"),
    ("辣椒苗移栽以后大面积死苗怀疑是肥料有问题", "agriculture"),
    ("拖拉机和旋耕机的购置补贴今年标准变了吗", "agriculture"),
    ("我们村那条通村路烂了好几年了货车进不来村里的厂都受影响", "rural"),
    ("村集体想搞个光伏项目增加收入衔接资金能不能用", "rural"),
    ("驻村第一书记说可以申请帮扶车间我们企业怎么对接", "rural"),
    ("村里的电商服务站没人管快递都堆在小卖部", "rural"),
    ("想在村里搞乡村旅游和民宿有没有扶持政策", "rural"),
    ("村里想成立强村公司发展集体经济有什么扶持", "rural"),
    ("脱贫户在我们厂上班能不能享受什么帮扶政策", "rural"),
    ("村里路灯坏了一半晚上黑漆漆的村委说没钱修", "rural"),
    ("公司新品发布想请县电视台和融媒体来报道一下", "publicity"),
    ("抖音上有人造谣说我们的产品有毒评论都在骂怎么处理", "publicity"),
    ("想参加今年的农博会展位怎么报名县里能不能统一组织宣传", "publicity"),
    ("我们的区域公用品牌宣传片想拍一个找谁对接", "publicity"),
    ("想请记者来拍一下我们的生产线做个宣传片", "publicity"),
    ("有网友在微博上说我们食品不卫生阅读量十几万影响很坏", "publicity"),
    ("县里的农产品区域公用品牌能不能授权我们用", "publicity"),
    ("账上没钱了工人的工资拖了三个月想借一笔过桥贷款先把工资发了", "finance"),
    ("村集体合作社的猕猴桃滞销了冷库也不够村里垫的钱收不回来", "rural|agriculture"),
    ("想把村里闲置的宅基地租给企业建厂手续怎么办", "rural|land"),
    ("你好", GENERAL),
    ("你能干啥", GENERAL),
    ("在吗在吗", GENERAL),
    ("发票开错了怎么红冲", GENERAL),
    ("营业执照经营范围想加一项去哪办", GENERAL),
    ("消防检查说我们车间的疏散通道不合格要整改", GENERAL),
    ("上次报的那个事情怎么没人回我了", GENERAL),
    ("增值税留抵退税什么时候能到账", GENERAL),
    ("嗯", GENERAL),
    ("好的谢谢", GENERAL),
    ("欠我们货款的那家公司老板跑了去法院起诉有用吗", GENERAL),
    ("公司想换个法人代表要去哪里办", GENERAL),
    ("消防验收过不了厂房投不了产", GENERAL),
    ("你们这个机器人是干嘛的", GENERAL),
]


def test_targets_on_reports(clf: Classifier) -> None:
    path = reports_path()
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    report = evaluate(clf, items)
    assert report.total == len(items) >= 400
    assert report.macro_f1 >= 0.93, report.render()
    assert report.hit_rate >= 0.96, report.render()


def test_probe_accuracy(clf: Classifier) -> None:
    wrong = []
    for text, expected in PROBES:
        result = clf.classify(text)
        if result.primary not in expected.split("|"):
            wrong.append((text, expected, result.labels, result.scores))
    accuracy = 1 - len(wrong) / len(PROBES)
    assert accuracy >= 0.9, wrong


def test_probe_set_covers_every_label() -> None:
    expected = {label for _, e in PROBES for label in e.split("|")}
    assert expected == {*DOMAIN_IDS, GENERAL}
    assert len(PROBES) >= 60


def test_homophones_from_voice_input_route_and_show_written_words(clf: Classifier) -> None:
    for text, label, written in [
        ("员工社宝断缴了", "hr_social", "社宝"),
        ("待款批不下来", "finance", "待款"),
        ("续带的事情", "finance", "续带"),
    ]:
        result = clf.classify(text)
        assert result.primary == label
        assert written in result.words


def test_two_teams_only_when_clearly_needed(clf: Classifier) -> None:
    both = clf.classify("资金周转不过来，工人工资拖欠了两个月，想申请一笔贷款先把工资发了")
    assert both.labels == ("finance", "hr_social")
    assert set(both.evidence) == {"finance", "hr_social"}
    single = clf.classify("想申请一笔流动资金贷款，银行要求抵押")
    assert single.labels == ("finance",)


@pytest.mark.parametrize("text", ["", "   ", "123", "你好", "测试", "我有个问题想咨询一下"])
def test_greetings_and_vague_text_are_general(clf: Classifier, text: str) -> None:
    result = clf.classify(text)
    assert result.labels == (GENERAL,)
    assert not result.routable


def test_result_shape(clf: Classifier) -> None:
    result = clf.classify("车间又跳闸了，生产线停了，急")
    assert isinstance(result, Classification)
    assert result.primary == "tech_industry"
    assert result.routable
    assert 0.0 < result.confidence <= 1.0
    assert "跳闸" in result.words
    assert result.urgent
    assert result.scores["tech_industry"] > 0
    assert not clf.classify("想咨询一下研发费用加计扣除").urgent


def test_confidence_falls_when_teams_compete(clf: Classifier) -> None:
    clear = clf.classify("排污许可证到期了，环评批复也要变更，在线监测数据超标")
    mixed = clf.classify("排污许可证的事情，还有贷款续贷")
    assert clear.confidence > mixed.confidence


def test_own_tokenizer_segments_domain_terms(clf: Classifier) -> None:
    words = clf.tokenizer.lcut("申请稳岗补贴和排污许可证，办不动产权证，车间跳闸")
    for term in ("稳岗补贴", "排污许可证", "不动产权证", "跳闸"):
        assert term in words
    assert clf.tokenizer is not jieba.dt
    assert "稳岗补贴" not in jieba.dt.FREQ


def test_cache_dir_is_built_then_reused(tmp_path: Path) -> None:
    first = Classifier(cache_dir=tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert "jieba.cache" in files
    assert any(name.startswith("userdict-") for name in files)
    assert any(name.startswith("derived-") for name in files)
    second = Classifier(cache_dir=tmp_path)
    text = "待款到期了续带怎么办"
    assert first.classify(text) == second.classify(text)
    assert {p.name for p in tmp_path.iterdir()} == files


def test_default_classifier_is_shared() -> None:
    assert get_classifier() is get_classifier()
