"""Every user-visible string and the card renderings, in neutral markup (bot.render.markup).

Templates are written with <b>…</b> for legibility and become markup at the end of this module;
user values are inserted as they are: each channel escapes them when it renders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.core.models import Attachment, Ticket, TicketEvent, TicketState, WarnLevel, team_name
from bot.core.privacy import mask_name, mask_phone
from bot.render.markup import BOLD as B
from bot.render.markup import END as E

MAX_TEXT = 4096

HELP_PRIVATE = (
    "<b>一米团企业服务机器人</b>\n"
    "直接发送您遇到的问题（文字、图片、文件、语音或位置都可以），我会分给对应的服务团队。\n\n"
    "/my 我的工单\n/ticket 编号 查看工单进度\n/reply 编号 内容 回复服务团队\n"
    "/withdraw 编号 撤回工单\n/profile 查看或修改企业信息\n/help 帮助"
)
HELP_GROUP = (
    "<b>一米团工作群</b>\n"
    "工单卡片上的按钮：签收、退回、办结。\n"
    "回复卡片即可给企业留言（须先签收）。\n\n"
    "/ticket 编号 查看工单\n/progress 编号 内容 记录进展\n/extend 编号 天数 原因 申请延期\n"
    "/longterm 编号 原因 申请长期跟踪\n/stats [week|month|year] 统计\n"
    "/dispatch 编号 团队编号 分拨（专班）\n/related 编号 可能相关的工单\n"
    "/merge 被合并编号 主单编号 合并办理，/unmerge 编号 撤销合并\n/teams 绑定情况\n"
    "管理员：/bind 团队编号 绑定本群，/unbind 解绑"
)
HELP_COORDINATOR = HELP_GROUP + (
    "\n\n<b>专班</b>\n/dispatch 编号 团队编号 分拨或改派\n"
    "/cohandle 编号 [-]团队编号 增加或取消协办单位\n/export [起始日期] [截止日期] 导出问题台账\n"
    "/related 编号 查看可能相关（同一问题）的工单"
)

REG_START = "您好！首次使用请先登记企业信息（只需一次）。\n\n请输入<b>企业名称</b>："
REG_START_WITH_DRAFT = "您的问题已暂存，登记完企业信息后即可提交。\n\n请输入<b>企业名称</b>："
REG_ASK_CONTACT = "请输入<b>联系人姓名</b>（如：张先生、李娜）："
REG_ASK_PHONE = "请点击下方按钮分享手机号，或直接输入11位手机号："
REG_BAD_PHONE = "手机号格式不对，请输入11位手机号（如 13812345678），或点击下方按钮分享。"
REG_ASK_TOWN = "请选择企业所在<b>乡镇/园区</b>："
REG_BAD_TOWN = "请点击上方按钮选择乡镇/园区。"
REG_ASK_CODE = "请输入18位<b>统一社会信用代码</b>（选填，可点“跳过”）："
REG_BAD_CODE = "统一社会信用代码应为18位且校验位正确，请核对后重新输入，或点“跳过”。"
REG_BAD_NAME = "名称请在2到60个字之间，请重新输入："
REG_DONE = "登记完成 ✅\n企业：{enterprise}\n联系人：{contact}\n电话：{phone}\n乡镇/园区：{town}"
REG_DONE_NEXT = "\n\n现在可以直接发送您遇到的问题。"
REG_DONE_DRAFT = "\n\n您之前发送的问题已为您整理如下，请确认："
SHARE_PHONE_LABEL = "📱 分享我的手机号"
SKIP_LABEL = "跳过"
CONTACT_NOT_OWN = "请分享您自己的手机号，或直接输入。"

STAFF_WELCOME = (
    "您好，{name}！您已开通工作私聊。签收工单后，企业联系方式和附件会发到这里。\n"
    "/reply 编号 内容：回复企业；/progress 编号 内容：记录进展；/help：帮助"
)
STAFF_START_HINT = "请先私聊机器人开通工作通知："
ADMIN_WAITING = (
    "⚠️ 有 {count} 条消息在等待专班群绑定（尚未绑定专班群）。请在专班群发送 /bind coordinator。"
)

NOT_ADMIN = "只有管理员可以绑定或解绑群组（管理员在配置 ADMIN_IDS 中设置）。"
BIND_USAGE = "用法：/bind 团队编号\n可用编号：\n{teams}"
BIND_PRIVATE = "请在要绑定的群里发送 /bind。"
BIND_DONE = "本群已绑定为：<b>{team}</b>"
UNBIND_DONE = "已解除绑定：{team}"
UNBIND_NONE = "本群尚未绑定任何团队。"
TEAMS_HEADER = "<b>群组绑定情况</b>"
TEAMS_UNBOUND = "（未绑定）"
GROUP_UNBOUND = "本群尚未绑定团队。管理员可发送 /bind 团队编号。"
# Counties (several in one deployment, bot.core.counties)
BIND_USAGE_COUNTY = (
    "本平台服务多个县（区），请写明县（区）代码：/bind 团队编号@县区代码（如 /bind {example}）\n"
    "县（区）代码：\n{counties}"
)
BIND_NOT_COUNTY_ADMIN = "您不是{county}的管理员，不能绑定该县（区）的群组。"
BIND_UNKNOWN_COUNTY = "没有代码为 {code} 的县（区）。县（区）代码：\n{counties}"
BIND_DONE_COUNTY = "本群已绑定为：<b>{county}·{team}</b>"
TEAMS_COUNTY_HEADER = "<b>{county}</b>"
REG_ASK_COUNTY = "请选择企业所在<b>县（区）</b>："
REG_BAD_COUNTY = "请点击上方按钮选择县（区）。"
REG_DONE_COUNTY = "\n县（区）：{county}"
PROFILE_COUNTY = "县（区）：{county}\n"
ALL_COUNTIES = "各县（区）合计"
OTHER_COUNTY = "该工单不属于本县（区）"

DRAFT_PROPOSAL = (
    "<b>请确认您的问题</b>\n{summary}\n\n"
    "建议交办：<b>{team}</b>{co}\n判断依据：{words}\n紧急程度：{urgency}{attachments}\n\n"
    "可继续补充文字或图片；确认无误请点“确认提交”。"
)
DRAFT_GENERAL = "暂时无法判断由哪个团队办理，提交后由专班（调度）分拨。"
DRAFT_CONFIDENTIAL = "专班（调度）——涉及对部门或工作人员的投诉，按规定保密，仅专班可见"
DRAFT_CANCELLED = "已取消，本次内容未提交。"
DRAFT_CHOOSE = "请选择办理团队："
DRAFT_EMPTY = "请先描述您遇到的问题，再提交。"
GREETING_GUIDE = (
    "您好！我是一米团企业服务机器人。请直接用一两句话描述企业遇到的问题，例如：\n"
    "“厂里变压器老是跳闸，生产线停了”\n“想申请稳岗补贴，不知道要准备什么材料”\n"
    "也可以发送图片、文件、语音或位置。/my 查看我的工单，/help 帮助。"
)
ASK_DESCRIPTION = (
    "没能看出您遇到的问题。请用文字简单描述：什么事、在哪里、影响多大，我再为您交给对应的服务团队。"
)
DRAFT_GONE = "这条草稿已经提交或取消了。"
RECEIPT = (
    "✅ 已提交，工单编号：<b>{number}</b>\n办理团队：{team}\n办结时限：{due}\n"
    "我们会尽快联系您。查看进度：/ticket {number}"
)
WORDS_NONE = "（无明确关键词）"

CLAIM_DONE = "已签收 {number}，企业联系方式已私信发送给您。"
CLAIM_TAKEN = "该工单已由 {name} 签收。"
CLAIM_NEED_START = "{mention}，请先点击私聊机器人开通工作通知，企业联系方式会在那里等您："
CLAIM_FIRM = "您的工单 {number} 已由 <b>{team}</b> 的 {name} 签收，办理中。"
RETURN_ASK = "请回复本消息写明退回原因（工单 {number}）："
RETURN_DONE = "工单 {number} 已退回专班重新分拨。"
RETURN_TWICE = "本团队已退回过该工单一次，不能再次退回，请联系专班。"
RETURN_LATE = "交办已超过1个工作日，不能退回；如需调整请联系专班。"
RESOLVE_ASK = "请回复本消息写明办理结果（工单 {number}）："
AWAITING_ALREADY = "已在等待您的回复，请直接回复上一条提示消息。"
RESOLVE_DONE = "工单 {number} 已办结，等待企业评价。"
RESOLVE_FIRM = (
    "您的工单 <b>{number}</b> 已办结。\n办理团队：{team}\n办理结果：{result}\n\n请评价办理结果："
)
RATE_THANKS = "您的评价：{rating}。感谢您的评价！工单 {number} 已销号。"
RATE_REOPEN_FIRM = "您的评价：{rating}。已收到，工单 {number} 将重新办理，专班会跟进。"
REOPEN_GROUP = "⚠️ 企业反馈工单 {number} <b>未解决</b>，已重新办理（第{count}次重办）。"
CLOSED_GROUP = "工单 {number} 企业评价：{rating}，已销号。"
FIRST_CONTACT_DONE = "已记录首次联系企业时间。"

RELAY_TO_FIRM = "【{team}】关于工单 {number}：\n{text}\n\n（直接回复本消息即可答复）"
RELAY_TO_GROUP = "企业回复（{number}）：\n{text}"
RELAY_SENT = "已转达。"
RELAY_NEED_CLAIM = "请先签收该工单，再与企业沟通。"
RELAY_NOT_CLAIMER = "该工单由 {name} 负责，请联系责任人或专班。"
REPLY_USAGE = "用法：/reply 工单编号 内容"
PROGRESS_USAGE = "用法：/progress 工单编号 进展内容"
PROGRESS_DONE = "已记录进展（{number}）。"
PROGRESS_FIRM = "【{team}】工单 {number} 最新进展：\n{text}"

DISPATCH_USAGE = "用法：/dispatch 工单编号 团队编号\n团队编号：{teams}"
DISPATCH_DONE = "工单 {number} 已交办给 {team}。"
DISPATCH_SAME = "工单 {number} 已经在 {team}。"
DISPATCH_FIRM = "您的工单 {number} 已转交 <b>{team}</b> 办理。"
COORD_NEW = "🆕 待分拨工单"
COORD_RETURNED = "↩️ 退回工单（{team}）：{reason}"
COORD_REOPENED = "⚠️ 企业反馈未解决，工单已重办：{number}（{team}）"
DISCARD_ASK = "请回复本消息写明按“{kind}”处理的原因（工单 {number}），企业会看到这条原因："
DISCARD_DONE = "工单 {number} 已按“{kind}”关闭，已告知企业原因。"
DISCARD_FIRM = (
    "您的工单 {number} 经专班审核，按“{kind}”处理，不再办理。\n原因：{reason}\n"
    "如有需要办理的问题，请直接发送问题描述。"
)
CO_CARD_ROLE = "🤝 本团为<b>协办</b>，主办：{lead}（签收、联系企业、办结由主办负责）"
CO_CARD_HINT = "协办意见：回复本卡片，或 /progress 编号 内容（3个工作日内答复主办；企业不直接看到）"
CO_CARD_REMOVED = "（本团已不再协办该工单）"
CO_PROGRESS_LEAD = "🤝 协办单位 {team} 对工单 {number} 的意见：\n{text}"
CO_PROGRESS_DONE = "已记录协办意见并转主办 {lead}（{number}）。"
CO_RESOLVED = "工单 {number} 已由主办 {lead} 办结。\n办理结果：{result}"
CO_NOT_ALLOWED = "本团是该工单的协办单位：签收、退回、办结和联系企业由主办 {lead} 负责。"
COHANDLE_USAGE = "用法：/cohandle 编号 团队编号（增加协办），/cohandle 编号 -团队编号（取消协办）\n团队编号：{teams}"
COHANDLE_LEAD = "{team} 是该工单的主办团队；改主办请用 /dispatch。"
COHANDLE_ALREADY = "{team} 已经是工单 {number} 的协办单位。"
COHANDLE_NOT_CO = "{team} 不是工单 {number} 的协办单位。"
COHANDLE_ADDED = "已增加 {team} 为工单 {number} 的协办单位，协办卡片已发送。"
COHANDLE_REMOVED = "已取消 {team} 对工单 {number} 的协办。"
COHANDLE_REMOVED_GROUP = "专班已取消本团对工单 {number} 的协办，无需再跟进。"
COHANDLE_LEAD_ADDED = "专班已增加 {team} 协办工单 {number}，协办意见会转到本群。"
COHANDLE_LEAD_REMOVED = "专班已取消 {team} 对工单 {number} 的协办。"
WITHDRAW_USAGE = "用法：/withdraw 工单编号"
WITHDRAW_DONE = "工单 {number} 已撤回。"
WITHDRAW_GROUP = "工单 {number} 已被企业撤回。"

TICKET_USAGE = "用法：/ticket 工单编号（如 /ticket YM-20261127-0007）"
TICKET_NOT_FOUND = "没有找到工单 {number}，或您无权查看。"
MY_NONE = "您还没有提交过问题。直接发送问题即可。"
MY_HEADER = "<b>我的工单</b>"
NOT_ALLOWED = "您没有权限进行此操作：{why}"
STALE_BUTTON = "这个按钮已失效，请刷新或查看最新卡片。"
STATE_CHANGED = "工单 {number} 当前状态为“{state}”，不能{action}。"
UNKNOWN_COMMAND = "没有这个命令。发送 /help 查看可用命令。"
UNSUPPORTED_MESSAGE = "暂不支持这种消息，请发送文字、图片、文件、语音或位置。"
EMPTY_TEXT = "没有收到内容，请用文字描述您遇到的问题。"
TOO_LONG = "内容过长，已截取前 {limit} 字保存。"
EDITED_NOTE = "已收到您修改后的内容，已补充到问题中。"
ERROR_GENERIC = "抱歉，处理这条消息时出了问题，没有办理成功，请稍后再发一次。"
# Over the per-user flood limit (bot/channels/telegram/flood.py): said once, then silence.
FLOOD_NOTICE = "您发送得太快了，刚才的部分消息没有收到。请稍候片刻，再把需要办理的内容发一次。"
FLOOD_TOAST = "操作太快了，请稍候再试。"
# The database refuses writes (disk full, read-only file): said once per chat and outage.
STORAGE_DOWN = "系统存储暂时出现故障，您刚发的内容已留存，恢复后会自动接着办理，请不要重复发送。"
STORAGE_DOWN_TOAST = "系统存储暂时故障，恢复后会自动处理这次操作，请勿重复点击。"
STORAGE_DOWN_STAFF = (
    "⚠️ 机器人的数据库暂时无法写入（{error}）：新消息和待发消息都已留存，恢复后自动处理。"
    "请运维人员尽快清理磁盘空间或检查数据库文件权限。"
)
STORAGE_UP_STAFF = "✅ 机器人的数据库已恢复写入，留存的消息正在自动处理。"
PROFILE = (
    "<b>企业信息</b>\n企业：{enterprise}\n统一社会信用代码：{code}\n乡镇/园区：{town}\n"
    "联系人：{contact}\n电话：{phone}\n\n修改请发送 /profile edit（重新登记，已提交的工单不受影响）。"
)
ATTACHMENT_TOO_LARGE = (
    "📎 {caption}：附件（{size}）超过{platform}的 {limit} MB 上限，无法转到这里。"
    "请联系对方改用其他方式发送（如拆分、压缩或当面提供）。"
)
UNDELIVERED = "⚠️ 消息无法送达 {target}（{reason}），工单 {number} 已标记为未送达，请电话联系。"
FIRM_OUT_OF_REACH = (
    "⚠️ 工单 {number}：企业暂时收不到消息（微信客服在企业最后一次发消息后 48 小时内最多发送 5 条），"
    "后续消息将在企业再次发消息时送达；如需尽快联系，请电话联系企业。"
)

STATE_ACTION = {
    "claim": "签收",
    "return": "退回",
    "resolve": "办结",
    "rate": "评价",
    "dispatch": "分拨",
    "reply": "沟通",
    "withdraw": "撤回",
    "progress": "记录进展",
    "discard": "按无效或重复关闭",
    "cohandle": "调整协办单位",
    "merge": "合并",
    "extend": "申请延期",
}

LEVEL_ICON = {WarnLevel.GREEN: "🟢", WarnLevel.YELLOW: "🟡", WarnLevel.RED: "🔴"}


def clip(text: str, limit: int) -> str:
    """Shorten to at most `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_dt(value: datetime | None) -> str:
    """Dates as Chinese offices write them."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def words_text(words: Sequence[str]) -> str:
    """The matched keywords."""
    return "、".join(w for w in words[:8]) if words else WORDS_NONE


def summary_of(text: str) -> str:
    """A one-paragraph summary for cards: the first 120 characters, whitespace folded."""
    return clip(" ".join(text.split()), 120)


def _contact(ticket: Ticket, masked: bool) -> str:
    name = ticket.contact_name or "—"
    phone = ticket.contact_phone or "—"
    if masked:
        return f"{mask_name(name)} {mask_phone(phone)}"
    return f"{name} {phone}"


def render_card(
    ticket: Ticket,
    *,
    coordinator: bool = False,
    co_team: str | None = None,
    related: Sequence[tuple[str, str]] = (),
) -> str:
    """The ticket card for a group: no full contact details (WORKFLOW.md privacy). A
    co-handling team's copy (`co_team`) says so and what it may do; `related` (number, reason)
    are the tickets found probably the same problem at submission (numbers only: nothing of
    the other firms)."""
    lines = [
        f"{LEVEL_ICON[ticket.warn_level]} {B}{ticket.number or ''}{E}"
        f"　{ticket.state.label}"
        + ("　⚠️紧急" if ticket.urgency.value == "urgent" else "")
        + ("　🔒保密" if ticket.confidential else ""),
        f"企业：{ticket.enterprise_name or '—'}（{ticket.town or '—'}）",
        f"联系人：{_contact(ticket, masked=True)}",
        f"团队：{team_name(ticket.team_id)}"
        + (
            f"　协办：{'、'.join(team_name(t) for t in ticket.co_teams)}" if ticket.co_teams else ""
        ),
        f"问题：{ticket.summary}",
        f"依据：{words_text(ticket.domain_words)}",
        f"时限：{fmt_dt(ticket.due_at)}"
        + (f"（{ticket.warn_level.label}）" if ticket.warn_level != WarnLevel.GREEN else ""),
    ]
    if ticket.state == TicketState.MERGED:
        lines.append(MERGED_CARD.format(main=ticket.merged_into_number or ""))
        return clip("\n".join(lines), MAX_TEXT)
    if ticket.merged_into_number:
        lines.append(f"并入：{ticket.merged_into_number}（主单）")
    if ticket.merged_count:
        lines.append(MAIN_CARD.format(count=ticket.merged_count, firms=ticket.merged_count + 1))
    if related:
        lines.append(related_line(ticket.number or "", related))
    if ticket.claimed_by_name:
        lines.append(f"责任人：{ticket.claimed_by_name}（{fmt_dt(ticket.claimed_at)} 签收）")
    if ticket.latest_progress and ticket.state.is_open:
        lines.append(f"进展：{clip(ticket.latest_progress, 100)}")
    if ticket.result_text:
        lines.append(f"结果：{clip(ticket.result_text, 200)}")
    if ticket.satisfaction:
        lines.append(f"企业评价：{ticket.satisfaction.label}")
    if ticket.reopen_count:
        lines.append(f"重办：{ticket.reopen_count} 次")
    if ticket.undelivered:
        lines.append("⚠️ 有消息未能送达企业，请电话联系")
    if coordinator and ticket.state == TicketState.PENDING_DISPATCH:
        lines.append("请选择交办团队：")
    if co_team is not None:
        lines.insert(1, CO_CARD_ROLE.format(lead=team_name(ticket.team_id)))
        if ticket.state.is_open and co_team in ticket.co_teams:
            lines.append(CO_CARD_HINT)
        elif ticket.state.is_open:
            lines.append(CO_CARD_REMOVED)
    return clip("\n".join(lines), MAX_TEXT)


RELATED_SHOWN = 3


def related_line(number: str, related: Sequence[tuple[str, str]], shown: int = 0) -> str:
    """可能相关：YM-…（同园区·停电）、… on a card; the rest counted, /related lists them."""
    limit = shown or RELATED_SHOWN
    listed = "、".join(f"{n}（{reason}）" for n, reason in related[:limit])
    more = len(related) - limit
    tail = f" 等 {len(related)} 件，/related {number} 查看" if more > 0 else ""
    return f"{RELATED_CARD}{listed}{tail}"


def is_park(town: str | None) -> bool:
    """An industrial park (园区, 集聚区, 开发区) rather than a town (乡/镇)."""
    return bool(town) and any(k in (town or "") for k in ("园区", "集聚区", "开发区"))


def related_reason(place: str, town: str | None, words: Sequence[str], same_firm: bool) -> str:
    """Why two tickets are probably one problem: the place, then the deciding words both
    share (同园区·停电); a text match alone is 描述相近."""
    parts = []
    if same_firm:
        parts.append(RELATED_SAME_FIRM)
    elif place == "same":
        parts.append("同园区" if is_park(town) else "同乡镇")
    elif place == "near":
        parts.append("邻近乡镇")
    parts.extend(words[:2])
    return "·".join(parts) if parts else RELATED_SIMILAR


def span_of(minutes: int) -> str:
    """A burst's window as people say it: 1 小时, 90 分钟."""
    return f"{minutes // 60} 小时" if minutes % 60 == 0 else f"{minutes} 分钟"


def render_related(
    ticket: Ticket, found: Sequence[tuple[str, str, str, str | None, str, float]]
) -> str:
    """/related: the candidates (number, state label, town, team, reason, probability)."""
    head = RELATED_HEADER.format(
        number=ticket.number or "", town=ticket.town or "—", team=team_name(ticket.team_id)
    )
    if not found:
        return f"{head}\n{RELATED_NONE}"
    lines = [head]
    for i, (number, state, town, team, reason, prob) in enumerate(found, 1):
        lines.append(
            f"{i}. {number}　{state}　{town or '—'}　{team_name(team)}\n"
            f"   {reason}（相关度 {round(prob * 100)}%）"
        )
    return clip("\n".join(lines), MAX_TEXT)


def render_details(ticket: Ticket, attachments: Sequence[Attachment]) -> str:
    """Full details sent privately to the claimer after 签收."""
    lines = [
        f"{B}{ticket.number or ''}{E} 工单详情（仅您可见）",
        f"企业：{ticket.enterprise_name or '—'}",
        f"统一社会信用代码：{ticket.credit_code or '—'}",
        f"乡镇/园区：{ticket.town or '—'}",
        f"联系人：{_contact(ticket, masked=False)}",
        f"时限：{fmt_dt(ticket.due_at)}",
        f"问题原文：\n{clip(ticket.text, 3000)}",
    ]
    if ticket.location:
        lines.append(f"位置：{ticket.location}")
    if attachments:
        lines.append(f"附件：{len(attachments)} 个（见下）")
    lines.append("\n请在1个工作日内联系企业，联系后点“已首次联系企业”。回复企业：/reply 编号 内容")
    return clip("\n".join(lines), MAX_TEXT)


def render_ticket_view(ticket: Ticket, events: Sequence[TicketEvent], *, full: bool) -> str:
    """/ticket: state and history."""
    lines = [
        f"{B}{ticket.number or ''}{E}　{ticket.state.label}",
        f"企业：{ticket.enterprise_name or '—'}",
        f"团队：{team_name(ticket.team_id)}",
        f"问题：{ticket.summary}",
        f"提交：{fmt_dt(ticket.submitted_at)}　时限：{fmt_dt(ticket.due_at)}",
    ]
    if ticket.merged_into_number:
        lines.append(f"合并办理：并入 {ticket.merged_into_number}")
    if ticket.merged_count:
        lines.append(MAIN_CARD.format(count=ticket.merged_count, firms=ticket.merged_count + 1))
    if ticket.claimed_by_name:
        lines.append(f"责任人：{ticket.claimed_by_name}")
    if ticket.result_text:
        lines.append(f"结果：{clip(ticket.result_text, 300)}")
    if full:
        lines.append(f"联系人：{_contact(ticket, masked=True)}")
    lines.append(f"\n{B}办理记录{E}")
    for event in events[-15:]:
        lines.append(f"{fmt_dt(event.at)} {EVENT_LABELS.get(event.action, event.action)}")
    return clip("\n".join(lines), MAX_TEXT)


def render_my(tickets: Sequence[Ticket]) -> str:
    """/my: a firm's tickets."""
    if not tickets:
        return MY_NONE
    lines = [MY_HEADER]
    for ticket in tickets:
        merged = f"（并入 {ticket.merged_into_number}）" if ticket.merged_into_number else ""
        lines.append(
            f"{ticket.number or ''}　{ticket.state.label}{merged}　{clip(ticket.summary, 24)}"
        )
    return "\n".join(lines)


EVENT_LABELS = {
    "created": "创建草稿",
    "submitted": "企业提交",
    "claimed": "签收",
    "returned": "退回专班",
    "dispatched": "分拨/改派",
    "relay_to_firm": "团队留言",
    "relay_to_team": "企业回复",
    "resolved": "办结",
    "rated": "企业评价",
    "reopened": "重办",
    "closed": "销号",
    "withdrawn": "企业撤回",
    "discarded": "专班按无效/重复关闭",
    "co_progress": "协办意见",
    "co_added": "增加协办单位",
    "co_removed": "取消协办单位",
    "first_contact": "首次联系企业",
    "progress": "进展",
    "details_viewed": "查看联系方式",
    "extension_requested": "申请延期",
    "extension_decided": "延期审批",
    "reminder": "催办提醒",
    "exported": "导出台账",
    "undelivered": "消息未送达",
    "merged": "合并到主单",
    "unmerged": "撤销合并",
    "merge_added": "并入工单",
    "merge_removed": "并入工单撤销合并",
    "main_claimed": "主单签收（已告知企业）",
    "main_progress": "主单进展（已告知企业）",
    "main_resolved": "主单办结（已告知企业）",
    "main_released": "主单撤销，恢复单独办理",
}

# -- 合并: several firms' reports of one problem handled once (issue 13 item 2) ----------------

MERGE_USAGE = (
    "用法：/merge 被合并工单编号 主单编号\n"
    "把前一张工单并入后一张（主单），合并办理：主单的进展和结果同步告知被合并的企业。"
)
UNMERGE_USAGE = "用法：/unmerge 工单编号（撤销合并，恢复单独办理）"
MERGE_SELF = "不能把工单 {number} 合并到它自己。"
MERGE_INTO_MERGED = "{main} 已合并到 {root}，请合并到主单：/merge {number} {root}"
MERGE_ALREADY = "{number} 已合并到 {main}。"
MERGE_HAS_MERGED = (
    "{number} 是合并办理的主单（已并入 {count} 件），不能再合并到其他工单；"
    "可以反过来把 {main} 合并到 {number}。"
)
MERGE_NOT_OPEN = "{number} 当前状态为“{state}”，不能合并。"
MERGE_MAIN_DONE = "主单 {number} 已办结、等待企业评价，不能再并入工单。"
MERGE_OTHER_TEAM = "{number} 属于{team}，跨团队合并请由专班办理"
MERGE_OTHER_COUNTY = "不同县（区）的工单不能合并"
MERGE_RULE = "只有主单的责任人、主单所属团队成员或专班可以合并"
MERGE_CONFIDENTIAL = "保密件只能与保密件合并（由专班办理）。"
MERGE_DONE = (
    "🔗 已将 {number}（{enterprise}）合并到主单 {main}。\n"
    "主单的签收、进展和办理结果会同步告知该企业，企业单独评价。"
)
MERGE_UNDO_HINT = (
    "\n如合并有误，可点“撤销合并”或发送 /unmerge {number}（主单的签收或进展告知该企业前有效）。"
)
MERGE_BUTTON = "↩️ 撤销合并"
MERGE_FIRM = (
    "您反映的问题（{number}）与其他企业反映的同一问题（{main}）合并办理，进展和结果会同步告知您。"
)
MERGE_GROUP_MAIN = "🔗 {number}（{enterprise}）已并入本单 {main} 合并办理，共涉及企业 {firms} 家。"
MERGED_CARD = "🔗 已合并到 {main}，由主单统一办理"
MAIN_CARD = "🔗 合并办理：并入 {count} 件，涉及企业 {firms} 家"
UNMERGE_DONE = "↩️ 已撤销合并：{number} 恢复单独办理（{state}）。"
UNMERGE_FIRM = "您反映的问题（{number}）恢复单独办理，我们会尽快安排专人办理。"
UNMERGE_GROUP_MAIN = "↩️ {number} 已撤销合并，不再随本单 {main} 办理。"
UNMERGED_GROUP = "↩️ {number} 恢复单独办理，请按卡片办理。"
UNMERGE_NOT_MERGED = "{number} 没有合并到其他工单。"
UNMERGE_WAS_CLAIMED = "{number} 合并前已签收办理，不能撤销合并（只有合并前未签收的工单可以撤销）。"
UNMERGE_TOLD = (
    "主单 {main} 的签收或进展已告知 {number} 的企业，不能再撤销合并。"
    "如确非同一问题：企业收到结果后选择“未解决”，该工单即回到团队单独办理。"
)
MAIN_RELEASED_GROUP = "主单 {main} 已撤销，并入的工单 {numbers} 恢复单独办理。"
MAIN_RELEASED_FIRM = (
    "与您的问题合并办理的工单已撤销，您反映的问题（{number}）恢复单独办理，我们会尽快安排。"
)
MERGED_REOPEN_GROUP = (
    "⚠️ 企业反馈 {number}（并入 {main}）<b>未解决</b>：已取消合并，回到本团单独办理"
    "（第{count}次重办），责任人 {owner}。"
)
MERGED_REOPEN_COORD = "⚠️ 企业反馈未解决，并入 {main} 的工单 {number} 已取消合并并重办（{team}）"
MERGED_RELAY_TO_GROUP = "企业回复（{number}，并入 {main}）：\n{text}"

# -- clock: reminders, escalation, extensions (issue 4) ---------------------------------------

REMIND_CLAIM_GROUP = "⏰ 工单 {number} 已超过1个工作小时无人签收，请尽快签收。"
REMIND_CLAIM_LEAD = "⏰ {lead}：工单 {number} 已超过2个工作小时无人签收，请安排签收。"
REMIND_CLAIM_COORD = "⏰ 工单 {number}（{team}）超过1个工作日无人签收，请专班督办。"
REMIND_YELLOW = "🟡 工单 {number} 已用去80%办理时限（时限 {due}），请抓紧办理。"
REMIND_RED = "🔴 工单 {number}（{team}，责任人 {owner}）已超期（时限 {due}）。"
REMIND_RED_GROUP = "🔴 工单 {number} 已超期（时限 {due}），已通报专班，请尽快办理。"
REMIND_FIRST_CONTACT = (
    "⏰ 工单 {number} 签收已超过1个工作日，尚未记录首次联系企业，请 {owner} 尽快联系。"
)
REMIND_LONG_TERM = "⏰ 长期跟踪工单 {number} 本周期尚未反馈进展，请用 /progress 记录。"
NO_EVALUATION_CLOSED = "工单 {number} 办结后5个工作日企业未评价，已按“未评价”销号。"
OVERDUE_HEADER = "<b>🔴 超期工单（{date}）</b>"
OVERDUE_LINE = "{number}　{team}　责任人 {owner}　超期 {days} 个工作日"
OVERDUE_NONE = "今日无超期工单。"
LEAD_DONE = "已设置 {name} 为{team}团长。"
LEAD_USAGE = "请在团队群里回复团长的一条消息并发送 /lead，或由团长本人发送 /lead。"
EXTEND_USAGE = "用法：/extend 工单编号 工作日数 原因（最多{max}个工作日）"
EXTEND_ASKED = "延期申请已提交专班审批（{number}，{days} 个工作日）。"
EXTEND_COORD = "📅 延期申请：{number}（{team}，{who}）\n申请延期 {days} 个工作日：{reason}\n{check}"
LONGTERM_USAGE = "用法：/longterm 工单编号 原因"
LONGTERM_ASKED = "长期跟踪申请已提交专班审批（{number}）。"
LONGTERM_COORD = "📌 长期跟踪申请：{number}（{team}，{who}）\n原因：{reason}"
EXT_APPROVED = "✅ 工单 {number} 延期已批准，新时限 {due}。"
EXT_REFUSED = "工单 {number} 的延期申请未获批准。"
EXT_FIRM = "您的工单 {number} 办理时限调整为 {due}（原因：{reason}）。"
LONGTERM_APPROVED = "✅ 工单 {number} 已转为长期跟踪，每 {days} 天反馈一次进展。"
LONGTERM_FIRM = "您的工单 {number} 需要较长时间办理，已转为长期跟踪，我们会定期向您反馈进展。"
EXT_DONE_ALREADY = "这条申请已经处理过了。"

# -- reports (issue 4) -------------------------------------------------------------------------

STATS_USAGE = "用法：/stats [week|month|year]（周、月、年）"
STATS_UNBOUND = "请在已绑定的团队群或专班群里使用 /stats。"
EXPORT_ONLY_COORD = "请在专班群里导出问题台账。"
EXPORT_USAGE = "用法：/export [起始日期] [截止日期]，如 /export 2026-11-01 2026-11-30"
EXPORT_CAPTION = "问题台账（{period}，共 {rows} 条）导出人：{who}，{at}"
EXPORT_ALL = "全部"

# -- burst: several cards for one group collapsed into one message (issue 6) -------------------

BATCH_HEADER = "🆕 <b>{count} 件新工单</b>（{team}）"
BATCH_FOOTER = "点击下方“签收 序号”签收对应工单；签收后详情私信发送给您。"
BATCH_MOVED = "已改派"
BATCH_RETURNED = "已退回专班"
# Room left for later edits (claimer names, states) when choosing how many tickets fit at send.
BATCH_SEND_LIMIT = 3600


def render_batch_entry(
    index: int, ticket: Ticket, chat_team: str | None, related: Sequence[str] = ()
) -> str:
    """One ticket of a batch card: number, state, enterprise, town, masked contact, summary,
    and the numbers of its related tickets (two at most)."""
    if ticket.state == TicketState.PENDING_DISPATCH:
        state = BATCH_RETURNED
    elif chat_team is not None and chat_team != ticket.team_id:
        state = BATCH_MOVED
    else:
        state = ticket.state.label
    head = f"{index}. {LEVEL_ICON[ticket.warn_level]} {B}{ticket.number or ''}{E}　{state}" + (
        "　⚠️紧急" if ticket.urgency.value == "urgent" else ""
    )
    who = (
        f"   {clip(ticket.enterprise_name or '—', 30)}（{ticket.town or '—'}）"
        f"　{_contact(ticket, masked=True)}"
    )
    if ticket.claimed_by_name and ticket.state.is_open:
        who += f"　责任人：{clip(ticket.claimed_by_name, 12)}"
    lines = [head, who, f"   {clip(ticket.summary, 40)}"]
    if related:
        more = " 等" if len(related) > 2 else ""
        lines.append(f"   {RELATED_CARD}{'、'.join(related[:2])}{more}")
    return "\n".join(lines)


def render_batch_card(
    tickets: Sequence[Ticket],
    chat_team: str | None,
    related: Mapping[int, Sequence[str]] | None = None,
) -> str:
    """The collapsed card: every ticket of the message with its current state (and the
    numbers of its related tickets, `related` by ticket id)."""
    header = BATCH_HEADER.format(
        count=len(tickets), team=team_name(chat_team or tickets[0].team_id)
    )
    found = related or {}
    entries = [
        render_batch_entry(i, t, chat_team, found.get(t.id, ())) for i, t in enumerate(tickets, 1)
    ]
    return clip("\n\n".join([header, *entries, BATCH_FOOTER]), MAX_TEXT)


# -- related reports (issue 13) -----------------------------------------------------------------

RELATED_CARD = "🔗 可能相关："
RELATED_SAME_FIRM = "同一企业"
RELATED_SIMILAR = "描述相近"
RELATED_HEADER = "<b>🔗 {number} 可能相关的工单</b>（{town}，{team}）"
RELATED_NONE = "近期没有发现可能相关（同一问题）的在办工单。"
RELATED_USAGE = "用法：/related 工单编号（如 /related YM-20261127-0007）"
RELATED_NOT_ALLOWED = "只有专班和办理该工单的团队可以查看相关工单。"
RELATED_BURST = (
    "🚨 <b>集中报告</b>：{town} {span}内 {count} 家报告{topic}\n"
    "{numbers}\n可能是同一问题，请统筹协调（/related {number} 查看）。"
)
RELATED_TOPIC_NONE = "相似问题"

BATCH_REPLY_HINT = (
    "这是多张工单的汇总卡片，无法确定回复哪一家企业。请用 /reply 工单编号 内容 回复。"
)


# The templates above become neutral markup (bold as bot.render.markup.BOLD ... END).
for _name, _value in list(globals().items()):
    if _name.isupper() and isinstance(_value, str) and "<b>" in _value:
        globals()[_name] = _value.replace("<b>", B).replace("</b>", E)

# -- WeCom (企业微信) app chat and 微信客服 ---------------------------------------------------
HELP_WECOM = (
    "<b>一米团（企业微信）</b>\n"
    "新工单以卡片发给团队每位成员：点“签收”或“退回”；签收后企业联系方式发到这里。\n"
    "退回原因、办结结果：点按钮后直接发送下一条消息即可。\n\n"
    "/reply 编号 内容 回复企业\n/progress 编号 内容 记录进展\n/ticket 编号 查看工单\n"
    "/extend 编号 天数 原因 申请延期\n/longterm 编号 原因 申请长期跟踪\n"
    "/stats [week|month|year] 统计\n/export [起始日期] [截止日期] 导出问题台账（专班）\n"
    "/dispatch 编号 团队编号 分拨（专班）\n/related 编号 可能相关的工单\n"
    "/merge 被合并编号 主单编号 合并办理，/unmerge 编号 撤销合并\n/teams 绑定情况\n"
    "管理员：/bind 团队编号 dept:部门ID 或 tag:标签ID，/unbind dept:部门ID 或 tag:标签ID"
)
WECOM_BIND_USAGE = (
    "用法：/bind 团队编号 dept:部门ID 或 /bind 团队编号 tag:标签ID\n可用团队编号：\n{teams}"
)
WECOM_UNBIND_USAGE = "用法：/unbind dept:部门ID 或 /unbind tag:标签ID"
WECOM_BIND_EMPTY = (
    "⚠️ {where} 在企业微信中没有成员（或应用无权查看），请检查部门/标签和应用可见范围。"
)
WECOM_NOT_IN_TEAM = "您不在任何已绑定团队的部门或标签中，无法使用该命令。"
WECOM_UNSUPPORTED_COMMAND = "企业微信中暂不支持该命令。发送 /help 查看可用命令。"
WECOM_STAFF_ONLY = "这是一米团工作应用，企业请通过微信客服反映问题。"
