"""Bring the database in line with a line file, and write the file back out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from peerline.service import linefile
from peerline.service.calendar import new_token
from peerline.service.context import JobsAfterCommit, Context
from peerline.service.services import LineServices
from peerline.service.models import (
    CoverShift,
    Group,
    LineSetting,
    Shift,
    Supporter,
    TimeOff,
)
from peerline.service.privacy import Vault
from peerline.service.rota import format_time, parse_time


@dataclass
class ImportReport:
    """What an import changed; empty when the database already matched the file."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    groups_changed: list[str] = field(default_factory=list)
    settings_changed: list[str] = field(default_factory=list)
    # The ids of the supporters this import created, for their first text.
    added_ids: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Say whether anything changed."""
        return any(
            (self.added, self.updated, self.deactivated, self.groups_changed, self.settings_changed)
        )


def _shift_rows(spec: linefile.SupporterSpec) -> list[tuple[str, int, int, bool]]:
    return [
        (",".join(s.days), parse_time(s.start), parse_time(s.end, end=True), s.run_on_holidays)
        for s in spec.shifts
    ]


def _set_setting(session: Session, key: str, value: str, report: ImportReport) -> None:
    row = session.get(LineSetting, key)
    if row is None:
        session.add(LineSetting(key=key, value=value))
        report.settings_changed.append(key)
    elif row.value != value:
        row.value = value
        report.settings_changed.append(key)


def _sync_supporter(
    supporter: Supporter, spec: linefile.SupporterSpec, report: ImportReport, is_new: bool
) -> None:
    wanted = {
        "name": spec.name,
        "languages": ",".join(spec.languages),
        "capacity": spec.capacity,
        "takes_calls": spec.takes_calls,
        "takes_sms": spec.takes_sms,
        "on_call": spec.on_call,
        "active": spec.active,
    }
    changed = False
    for attr, value in wanted.items():
        if getattr(supporter, attr) != value:
            setattr(supporter, attr, value)
            changed = True
    shifts = [(s.days, s.start_minute, s.end_minute, s.run_on_holidays) for s in supporter.shifts]
    if shifts != _shift_rows(spec):
        supporter.shifts = [
            Shift(days=d, start_minute=a, end_minute=b, run_on_holidays=h)
            for d, a, b, h in _shift_rows(spec)
        ]
        changed = True
    cover = [(c.on_date, c.start_minute, c.end_minute) for c in supporter.cover_shifts]
    wanted_cover = [(c.date, parse_time(c.start), parse_time(c.end, end=True)) for c in spec.cover]
    if cover != wanted_cover:
        supporter.cover_shifts = [
            CoverShift(on_date=d, start_minute=a, end_minute=b) for d, a, b in wanted_cover
        ]
        changed = True
    off = [(t.start_date, t.end_date) for t in supporter.time_off]
    wanted_off = [(t.from_, t.to) for t in spec.time_off]
    if off != wanted_off:
        supporter.time_off = [TimeOff(start_date=a, end_date=b) for a, b in wanted_off]
        changed = True
    if is_new:
        report.added.append(spec.name)
    elif changed:
        report.updated.append(spec.name)


def import_line(session: Session, vault: Vault, line: linefile.LineFile) -> ImportReport:
    """Make the rota, supporters and groups match the file; a second run changes nothing."""
    report = ImportReport()
    _set_setting(session, "timezone", line.timezone, report)
    _set_setting(session, "holidays", line.holidays or "", report)
    existing = {
        s.phone_hash: s
        for s in session.scalars(
            select(Supporter).options(
                selectinload(Supporter.shifts),
                selectinload(Supporter.cover_shifts),
                selectinload(Supporter.time_off),
            )
        )
    }
    seen: set[str] = set()
    created: list[Supporter] = []
    for spec in line.supporters:
        phone_hash = vault.lookup_hash(spec.phone)
        seen.add(phone_hash)
        supporter = existing.get(phone_hash)
        is_new = supporter is None
        if supporter is None:
            supporter = Supporter(
                name=spec.name,
                phone_hash=phone_hash,
                phone_enc=vault.encrypt(spec.phone),
                away=False,
                opted_out=False,
                expired_in_row=0,
                calendar_token=new_token(),
            )
            session.add(supporter)
            created.append(supporter)
        _sync_supporter(supporter, spec, report, is_new)
    for phone_hash, supporter in existing.items():
        # Left out of the file: kept for the record of past chats, but no longer on the rota.
        if phone_hash not in seen and supporter.active:
            supporter.active = False
            report.deactivated.append(supporter.name)

    groups = {g.name: g for g in session.scalars(select(Group))}
    for spec_group in line.groups:
        values = {
            "days": ",".join(spec_group.days),
            "start_minute": parse_time(spec_group.start),
            "minutes": spec_group.minutes,
            "skip_holidays": spec_group.skip_holidays,
            "join_url": spec_group.join,
            "cancelled": ",".join(d.isoformat() for d in spec_group.cancelled),
        }
        group = groups.pop(spec_group.name, None)
        if group is None:
            session.add(Group(name=spec_group.name, **values))
            report.groups_changed.append(spec_group.name)
            continue
        if any(getattr(group, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(group, k, v)
            report.groups_changed.append(spec_group.name)
    for name, group in groups.items():
        session.delete(group)
        report.groups_changed.append(name)
    session.flush()
    report.added_ids = [s.id for s in created]
    return report


def welcome_supporters(line: LineServices, session: Session, supporter_ids: Iterable[int]) -> JobsAfterCommit:
    """Text each newly added supporter how the line works, and return the sends to dispatch
    after the commit.

    Written before any offer can exist for them, and a person's texts go out in the order they
    were written, so this is the first the supporter hears. Called only for supporters just
    created: importing the same file again creates nobody, so nobody hears it twice.
    """
    runtime = Context(line, session)
    for supporter_id in supporter_ids:
        supporter = session.get(Supporter, supporter_id)
        if supporter is not None and supporter.active:
            runtime.to_supporter(supporter, "supporter_welcome", name=supporter.name)
    return runtime.after_commit


def export_line(session: Session, vault: Vault, default_timezone: str) -> linefile.LineFile:
    """Return the line file that describes the database's rota, supporters and groups."""
    settings = {row.key: row.value for row in session.scalars(select(LineSetting))}
    supporters = session.scalars(
        select(Supporter)
        .options(
            selectinload(Supporter.shifts),
            selectinload(Supporter.cover_shifts),
            selectinload(Supporter.time_off),
        )
        .order_by(Supporter.id)
    ).all()
    return linefile.LineFile(
        timezone=settings.get("timezone") or default_timezone,
        holidays=settings.get("holidays") or None,
        supporters=[
            linefile.SupporterSpec(
                name=s.name,
                phone=vault.decrypt(s.phone_enc),
                languages=s.language_list,
                capacity=s.capacity,
                takes_calls=s.takes_calls,
                takes_sms=s.takes_sms,
                on_call=s.on_call,
                active=s.active,
                shifts=[
                    linefile.ShiftSpec(
                        days=sh.days.split(","),
                        start=format_time(sh.start_minute),
                        end=format_time(sh.end_minute),
                        run_on_holidays=sh.run_on_holidays,
                    )
                    for sh in s.shifts
                ],
                cover=[
                    linefile.CoverSpec(
                        date=c.on_date,
                        start=format_time(c.start_minute),
                        end=format_time(c.end_minute),
                    )
                    for c in s.cover_shifts
                ],
                time_off=[
                    linefile.TimeOffSpec(from_=t.start_date, to=t.end_date) for t in s.time_off
                ],
            )
            for s in supporters
        ],
        groups=[
            linefile.GroupSpec(
                name=g.name,
                days=g.days.split(","),
                start=format_time(g.start_minute),
                minutes=g.minutes,
                skip_holidays=g.skip_holidays,
                join=g.join_url,
                cancelled=[date.fromisoformat(d) for d in g.cancelled.split(",") if d],
            )
            for g in session.scalars(select(Group).order_by(Group.name))
        ],
    )
