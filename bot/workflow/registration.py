"""Registration of a firm's user on /start, and /profile (no telegram imports)."""

from __future__ import annotations

from datetime import datetime

from bot.core.counties import Counties
from bot.core.models import User
from bot.core.ports import Actor
from bot.core.validation import normalize_credit_code, normalize_phone
from bot.render import texts
from bot.render.keyboards import (
    CONTACT_BUTTON,
    Button,
    Reply,
    cb,
    counties_keyboard,
    towns_keyboard,
)
from bot.storage.db import Repo

STEPS = ("name", "contact", "phone", "county", "town", "code")


def begin(*, has_draft: bool, county: str | None = None) -> tuple[dict[str, object], Reply]:
    """Fields to store and the first question; `county` from a county's own link or QR code
    (/start county-<code>) spares the firm the county question."""
    data: dict[str, object] = {"county": county} if county is not None else {}
    return {"reg_step": "name", "reg_data": data}, Reply(
        texts.REG_START_WITH_DRAFT if has_draft else texts.REG_START
    )


def towns_of(counties: Counties, data: dict[str, object]) -> list[str]:
    """The town/park list of the county chosen so far."""
    return list(counties.of(str(data.get("county") or "")).towns)


def _after_phone(counties: Counties, data: dict[str, object]) -> str:
    """The step after the phone: the county, unless there is one county or it is known."""
    return "town" if counties.single or data.get("county") is not None else "county"


def is_registered(user: User | None) -> bool:
    """A firm user who has finished registration."""
    return user is not None and user.enterprise_id is not None and user.reg_step is None


async def step(
    repo: Repo,
    user: User,
    actor: Actor,
    now: datetime,
    counties: Counties,
    *,
    text: str | None = None,
    contact_phone: str | None = None,
    contact_user_id: str | None = None,
    town_index: int | None = None,
    county_index: int | None = None,
    skip: bool = False,
) -> tuple[list[Reply], bool]:
    """Take one answer; returns the replies and whether registration has just finished."""
    data = dict(user.reg_data)
    current = user.reg_step or "name"
    towns = towns_of(counties, data)
    if (
        (town_index is not None and current != "town")
        or (county_index is not None and current != "county")
        or (skip and current != "code")
    ):
        return [prompt(current, counties, data, texts.STALE_BUTTON + "\n")], False
    value = (text or "").strip()
    if current == "name":
        if not 2 <= len(value) <= 60:
            return [Reply(texts.REG_BAD_NAME)], False
        data["name"] = value
        await repo.users.update_user(user.id, now, reg_step="contact", reg_data=data)
        return [Reply(texts.REG_ASK_CONTACT)], False
    if current == "contact":
        if not 1 <= len(value) <= 20:
            return [Reply(texts.REG_ASK_CONTACT)], False
        data["contact"] = value
        await repo.users.update_user(user.id, now, reg_step="phone", reg_data=data)
        return [Reply(texts.REG_ASK_PHONE, reply_keyboard=[[CONTACT_BUTTON]])], False
    if current == "phone":
        if contact_phone is not None and contact_user_id not in (None, actor.id):
            return [Reply(texts.CONTACT_NOT_OWN, reply_keyboard=[[CONTACT_BUTTON]])], False
        phone = normalize_phone(contact_phone if contact_phone is not None else value)
        if phone is None:
            return [Reply(texts.REG_BAD_PHONE, reply_keyboard=[[CONTACT_BUTTON]])], False
        data["phone"] = phone
        following = _after_phone(counties, data)
        await repo.users.update_user(user.id, now, reg_step=following, reg_data=data)
        return [
            Reply(f"手机号 {phone} 已记录。", remove_keyboard=True),
            prompt(following, counties, data),
        ], False
    if current == "county":
        names = [c.name for c in counties]
        if county_index is None and value in names:
            county_index = names.index(value)
        if county_index is None or not 0 <= county_index < len(names):
            return [Reply(texts.REG_BAD_COUNTY, buttons=counties_keyboard(names))], False
        data["county"] = counties.all[county_index].code
        await repo.users.update_user(user.id, now, reg_step="town", reg_data=data)
        return [prompt("town", counties, data)], False
    if current == "town":
        if town_index is None and value in towns:
            town_index = towns.index(value)
        if town_index is None or not 0 <= town_index < len(towns):
            return [Reply(texts.REG_BAD_TOWN, buttons=towns_keyboard(towns))], False
        data["town"] = towns[town_index]
        await repo.users.update_user(user.id, now, reg_step="code", reg_data=data)
        return [
            Reply(
                f"乡镇/园区：{towns[town_index]}\n\n{texts.REG_ASK_CODE}",
                buttons=[[Button(texts.SKIP_LABEL, cb("skip"))]],
            )
        ], False
    # current == "code"
    code: str | None = None
    if not skip:
        code = normalize_credit_code(value)
        if code is None:
            return [
                Reply(texts.REG_BAD_CODE, buttons=[[Button(texts.SKIP_LABEL, cb("skip"))]])
            ], False
    return [await _finish(repo, user, data, code, now, counties)], True


async def _finish(
    repo: Repo,
    user: User,
    data: dict[str, object],
    code: str | None,
    now: datetime,
    counties: Counties,
) -> Reply:
    name = str(data["name"])
    town = str(data.get("town") or "")
    county = counties.of(str(data.get("county") or "")).code
    enterprise = await repo.users.find_enterprise(name, code, county)
    if enterprise is None:
        enterprise_id = await repo.users.insert_enterprise(name, code, town, now, county)
    else:
        enterprise_id = enterprise.id
        updates: dict[str, object] = {"town": town, "county": county}
        if code and not enterprise.credit_code:
            updates["credit_code"] = code
        await repo.users.update_enterprise(enterprise_id, **updates)
    await repo.users.update_user(
        user.id,
        now,
        enterprise_id=enterprise_id,
        contact_name=str(data["contact"]),
        phone=str(data["phone"]),
        reg_step=None,
        reg_data={},
    )
    done = texts.REG_DONE.format(
        enterprise=name,
        contact=str(data["contact"]),
        phone=str(data["phone"]),
        town=town,
    )
    if not counties.single:
        done += texts.REG_DONE_COUNTY.format(county=counties.of(county).name)
    return Reply(done)


async def profile(repo: Repo, user: User, counties: Counties) -> Reply:
    """/profile: what is on record."""
    enterprise = await repo.users.get_enterprise(user.enterprise_id) if user.enterprise_id else None
    county = (
        ""
        if counties.single or enterprise is None
        else texts.PROFILE_COUNTY.format(county=counties.of(enterprise.county).name)
    )
    return Reply(
        county
        + texts.PROFILE.format(
            enterprise=enterprise.name if enterprise else "—",
            code=(enterprise.credit_code if enterprise else None) or "—",
            town=(enterprise.town if enterprise else None) or "—",
            contact=user.contact_name or "—",
            phone=user.phone or "—",
        )
    )


def prompt(step_name: str, counties: Counties, data: dict[str, object], prefix: str = "") -> Reply:
    """The question of a registration step, with its buttons (to resume after a pause)."""
    if step_name == "phone":
        return Reply(prefix + texts.REG_ASK_PHONE, reply_keyboard=[[CONTACT_BUTTON]])
    if step_name == "county":
        names = [c.name for c in counties]
        return Reply(prefix + texts.REG_ASK_COUNTY, buttons=counties_keyboard(names))
    if step_name == "town":
        towns = towns_of(counties, data)
        return Reply(prefix + texts.REG_ASK_TOWN, buttons=towns_keyboard(towns))
    if step_name == "code":
        return Reply(prefix + texts.REG_ASK_CODE, buttons=[[Button(texts.SKIP_LABEL, cb("skip"))]])
    if step_name == "contact":
        return Reply(prefix + texts.REG_ASK_CONTACT)
    return Reply(prefix + texts.REG_START.split("\n\n")[-1])
