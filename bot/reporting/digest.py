"""The digest as text (neutral markup, Simplified Chinese, within one message) and as a chart,
and every county side by side, from the figures of bot/reporting/stats.py."""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Sequence

from bot.core.models import (
    TEAM_NAMES,
    TicketState,
    team_name,
)
from bot.render.markup import BOLD as B
from bot.render.markup import END as E
from bot.reporting.stats import (
    MESSAGE_LIMIT,
    NAMED_OVERDUE_WORKDAYS,
    Digest,
    Metrics,
    PeriodKind,
    compare,
    domain_label,
)

logger = logging.getLogger(__name__)


# -- rendering ---------------------------------------------------------------------------------

_KIND_LABEL = {"week": "本周", "month": "本月", "year": "本年"}
_PREV_LABEL = {"week": "上周", "month": "上月", "year": "上年同期"}
_REPORT = {"week": "周报", "month": "月报", "year": "年报"}


def pct(rate: float | None) -> str:
    """``0.857`` → ``85.7%``; no data → ``—``."""
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _delta_pp(value: float | None) -> str:
    if value is None:
        return ""
    return f"（{'+' if value >= 0 else ''}{value:.1f}个百分点）"


def _delta_n(value: float | None) -> str:
    if value is None:
        return ""
    return f"（{'+' if value >= 0 else ''}{value:.0f}）"


def top_domains(m: Metrics, n: int = 3) -> list[tuple[str, int]]:
    """The ``n`` domains with most tickets (hotspots), as (Chinese label, count)."""
    return [(domain_label(d), c) for d, c in m.by_domain.most_common(n)]


def render_comparison(
    kind: PeriodKind, rows: Sequence[tuple[str, Metrics]], overdue: Sequence[int]
) -> str:
    """Every county side by side (the city's or province's leaders): new, resolved, on time,
    satisfied, overdue now; the county names are the deployment's own (COUNTIES_FILE)."""
    lines = [f"{B}各县（区）对比（{_KIND_LABEL[kind]}）{E}"]
    lines.append("县（区）｜新增｜办结率｜按期办结率｜满意率｜当前超期")
    for (name, m), late in zip(rows, overdue, strict=True):
        lines.append(
            f"{name}｜{m.new}｜{pct(m.resolved_rate)}｜{pct(m.on_time_rate)}｜"
            f"{pct(m.satisfaction_rate)}｜{late}"
        )
    return "\n".join(lines)


def render_digest(digest: Digest, *, title: str | None = None) -> str:
    """The digest in neutral markup (bot.render.markup), Simplified Chinese, at most 4096
    characters."""
    kind = digest.kind
    label, prev_label = _KIND_LABEL[kind], _PREV_LABEL[kind]
    m, last, ytd = (digest.metrics(s) for s in (digest.period, digest.previous, digest.ytd))
    d = compare(m, last)
    scope = digest.area if digest.team_id is None else team_name(digest.team_id)
    opened = digest.open_now.get(digest.team_id or "all", Counter())
    p = digest.period
    head = [
        f"{B}{title or '一米团企业服务' + _REPORT[kind]}（{scope}）{E}",
        f"统计区间：{p.start:%m月%d日%H:%M}—{p.end:%m月%d日%H:%M}，与{prev_label}比较",
        "",
        f"{B}一、问题受理{E}　{label}新增 {B}{m.new}{E} 件{_delta_n(d['new'])}，"
        + (f"涉及企业 {m.firms} 家（合并办理 {m.merged} 件），" if m.merged else "")
        + f"年度累计 {ytd.new} 件"
        + (
            f"（其中无效 {m.invalid} 件、重复 {m.duplicate} 件，不计入各项比率）"
            if m.invalid or m.duplicate
            else ""
        ),
        "热点领域：" + ("、".join(f"{n} {c}件" for n, c in top_domains(m)) or "无"),
        "分乡镇：" + ("、".join(f"{t} {c}" for t, c in m.by_town.most_common(5)) or "无"),
        f"{B}二、签收{E}　及时率 {pct(m.claim_rate)}{_delta_pp(d['claim_rate'])}；"
        f"首次联系及时率 {pct(m.contact_rate)}",
        f"{B}三、办结{E}　办结率 {pct(m.resolved_rate)}{_delta_pp(d['resolved_rate'])}，"
        f"办结 {m.resolved} 件；当前待签收 {opened[TicketState.PENDING_CLAIM]} 件、"
        f"办理中 {opened[TicketState.IN_PROGRESS]} 件、长期跟踪 {opened[TicketState.LONG_TERM]} 件、"
        f"待评价 {opened[TicketState.PENDING_CONFIRM]} 件",
        f"{B}四、按期办结率{E}　{pct(m.on_time_rate)}{_delta_pp(d['on_time_rate'])}；"
        f"当前超期 {digest.overdue_total} 件",
        f"{B}五、企业确认解决率{E}　{pct(m.solved_rate)}{_delta_pp(d['solved_rate'])}"
        "（以企业评价为准，不同于办结率）",
        f"{B}六、满意率{E}　{pct(m.satisfaction_rate)}{_delta_pp(d['satisfaction_rate'])}，"
        f"评价覆盖率 {pct(m.rating_coverage)}",
        f"{B}七、平均办结用时{E}　"
        + ("—" if m.avg_workdays is None else f"{m.avg_workdays:.1f} 个工作日"),
        f"{B}八、退单 {m.returns} 次，重办 {m.reopens} 次，督办 {m.supervised} 件{E}",
        "",
        f"{B}年度累计{E}：受理 {ytd.new} 件"
        + (f"（涉及企业 {ytd.firms} 家）" if ytd.merged else "")
        + f"，办结率 {pct(ytd.resolved_rate)}，"
        f"按期办结率 {pct(ytd.on_time_rate)}，解决率 {pct(ytd.solved_rate)}，"
        f"满意率 {pct(ytd.satisfaction_rate)}",
    ]
    if digest.team_id is None:
        head += ["", f"{B}分团情况{E}（新增/办结/按期率/满意率/退单/重办/督办）"]
        for team_id, name in TEAM_NAMES.items():
            t = digest.period.team(team_id)
            head.append(
                f"{name}：{t.new}/{t.resolved}/{pct(t.on_time_rate)}/"
                f"{pct(t.satisfaction_rate)}/{t.returns}/{t.reopens}/{t.supervised}"
            )
    lines = [*head, "", f"{B}超期清单{E}（超期满 {NAMED_OVERDUE_WORKDAYS:.0f} 个工作日予以通报）"]
    if not digest.overdue:
        lines.append("无超期工单。")
    tail_reserve = 40
    used = sum(len(x) + 1 for x in lines)
    for i, item in enumerate(digest.overdue):
        row = (
            f"{'【通报】' if item.named else ''}{item.number} {team_name(item.team_id)} "
            f"责任人：{item.owner or '未签收'} 超期 {item.workdays:.1f} 个工作日"
        )
        if used + len(row) + 1 > MESSAGE_LIMIT - tail_reserve:
            lines.append(f"……等 {digest.overdue_total - i} 条")
            break
        lines.append(row)
        used += len(row) + 1
    text = "\n".join(lines)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


# -- chart -------------------------------------------------------------------------------------

_font_cache: list[str | None] = []


def cjk_font_family() -> str | None:
    """A font family with Chinese glyphs registered in matplotlib, or None (logged once)."""
    if _font_cache:
        return _font_cache[0]
    from matplotlib import font_manager

    family: str | None = None
    try:
        import pylopdf_fonts_zh_cn  # type: ignore[import-not-found, unused-ignore]

        path = str(pylopdf_fonts_zh_cn.sans_path())
        font_manager.fontManager.addfont(path)
        family = font_manager.FontProperties(fname=path).get_name()
    except (ImportError, OSError, RuntimeError):
        known = (
            "Noto Sans CJK SC",
            "Noto Sans SC",
            "Source Han Sans SC",
            "WenQuanYi Micro Hei",
            "WenQuanYi Zen Hei",
            "Microsoft YaHei",
            "SimHei",
            "PingFang SC",
        )
        available = {f.name for f in font_manager.fontManager.ttflist}
        family = next((name for name in known if name in available), None)
    if family is None:
        logger.warning(
            "no CJK font for charts: install pylopdf-fonts-zh-cn (or fonts-noto-cjk); "
            "chart labels fall back to Latin"
        )
    _font_cache.append(family)
    return family


def render_chart(digest: Digest) -> bytes:
    """PNG: new and 办结 per team; on-time and satisfaction rates per team."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    family = cjk_font_family()
    teams = list(TEAM_NAMES)
    if family is not None:
        names = [TEAM_NAMES[t].removesuffix("一米团").removesuffix("服务") for t in teams]
        words = {
            "new": "新增",
            "resolved": "办结",
            "on_time": "按期办结率",
            "satisfaction": "满意率",
            "title1": f"{_KIND_LABEL[digest.kind]}各团新增与办结（件）",
            "title2": "按期办结率与满意率（%）",
        }
    else:
        names = teams
        words = {
            "new": "new",
            "resolved": "resolved",
            "on_time": "on-time %",
            "satisfaction": "satisfaction %",
            "title1": "new and resolved per team",
            "title2": "on-time and satisfaction rates",
        }
    period = digest.period
    new = [period.team(t).new for t in teams]
    resolved = [period.team(t).resolved for t in teams]
    on_time = [(period.team(t).on_time_rate or 0.0) * 100 for t in teams]
    satisfied = [(period.team(t).satisfaction_rate or 0.0) * 100 for t in teams]

    fig = Figure(figsize=(10, 7), dpi=100)
    if family is not None:
        fig.set_layout_engine("constrained")
    ax1, ax2 = fig.subplots(2, 1)
    xs = range(len(teams))
    width = 0.38
    font = {"family": family} if family else {}
    ax1.bar([x - width / 2 for x in xs], new, width, label=words["new"], color="#4e79a7")
    ax1.bar([x + width / 2 for x in xs], resolved, width, label=words["resolved"], color="#59a14f")
    ax2.bar([x - width / 2 for x in xs], on_time, width, label=words["on_time"], color="#f28e2b")
    ax2.bar(
        [x + width / 2 for x in xs], satisfied, width, label=words["satisfaction"], color="#e15759"
    )
    ax1.yaxis.get_major_locator().set_params(integer=True)
    ax2.set_ylim(0, 105)
    for ax, key in ((ax1, "title1"), (ax2, "title2")):
        ax.set_title(words[key], fontdict=font)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names, fontdict=font, rotation=20 if family else 30, ha="right")
        ax.legend(prop=font)
        ax.grid(axis="y", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
