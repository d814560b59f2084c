"""Reports: contacts by day and hour, waits, abandonment and ratings, as charts and CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, render_template, request
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from peerline.console import record_stats, stats
from peerline.console.calls import inbound_calls
from peerline.console.charts import bar_chart, line_chart
from peerline.console.common import audit, format_duration, line, local_today
from peerline.console.forms import ReportForm, given
from peerline.service.models import ContactRecord, Conversation, DebriefRequest, Supporter

bp = Blueprint("reports", __name__, url_prefix="/reports")

DEFAULT_DAYS = 28


def _span(form: ReportForm, today: date) -> tuple[date, date]:
    """Return the days asked for, or the last four weeks when none (or nonsense) were."""
    if request.args and form.validate():
        return given(form.start.data), given(form.end.data)
    first = today - timedelta(days=DEFAULT_DAYS - 1)
    form.start.data, form.end.data = first, today
    return first, today


def load_report(session: Session, first: date, last: date) -> stats.Report:
    """Read the conversations started in a span of local days and count them."""
    tz = line().timezone(session)
    start, end = stats.span_utc(first, last, tz)
    rows = session.execute(
        select(
            Conversation.created_at,
            Conversation.queued_at,
            Conversation.matched_at,
            Conversation.closed_at,
            Conversation.state,
            Conversation.rating,
            Conversation.priority,
            Conversation.crisis_at,
        ).where(Conversation.created_at >= start, Conversation.created_at < end)
    )
    return stats.build_report(
        (stats.ConversationFacts(*row) for row in rows),
        tz,
        first,
        last,
        inbound_calls(session, start, end),
    )


def load_records(session: Session, first: date, last: date) -> record_stats.RecordFigures:
    """Read the records of chats and answered calls that ended in a span of local days."""
    tz = line().timezone(session)
    start, end = stats.span_utc(first, last, tz)
    debriefed = select(DebriefRequest.id).where(
        or_(
            DebriefRequest.conversation_id == ContactRecord.conversation_id,
            DebriefRequest.call_id == ContactRecord.call_id,
        )
    )
    rows = session.execute(
        select(
            ContactRecord.ended_at,
            Supporter.name,
            ContactRecord.topics,
            debriefed.exists(),
            ContactRecord.referred,
            ContactRecord.supporter_score,
            ContactRecord.channel,
        )
        .outerjoin(Supporter, Supporter.id == ContactRecord.supporter_id)
        .where(ContactRecord.ended_at >= start, ContactRecord.ended_at < end)
    )
    return record_stats.build_record_figures(
        (record_stats.RecordFacts(*row) for row in rows),
        tz,
        first,
        last,
        line().settings.note_topics,
    )


def record_charts(figures: record_stats.RecordFigures) -> dict[str, Markup]:
    """Return the after-chat chart: how often each topic was noted (by week in the table)."""
    totals = figures.topic_totals()
    return {
        "topics": bar_chart(
            [topic for topic, _ in totals],
            [count for _, count in totals],
            chart_id="chart-topics",
            title="Topics noted by supporters",
            description=", ".join(f"{t}: {n}" for t, n in totals) or "No topics yet.",
        ),
    }


def charts(report: stats.Report) -> dict[str, Markup]:
    """Return the report's charts as SVG."""
    labels = [f"{d.day.day} {d.day.strftime('%b')}" for d in report.days]
    every = max(1, len(labels) // 10)
    minutes = [
        (
            "Median",
            [None if d.wait_median is None else round(d.wait_median / 60, 1) for d in report.days],
        ),
        (
            "90th percentile",
            [None if d.wait_p90 is None else round(d.wait_p90 / 60, 1) for d in report.days],
        ),
    ]
    busiest = max(report.by_hour, default=0)
    return {
        "per_day": bar_chart(
            labels,
            [d.contacts for d in report.days],
            chart_id="chart-per-day",
            title="Contacts per day",
            description=f"{report.contacts} contacts from {report.first} to {report.last}.",
            label_every=every,
        ),
        "per_hour": bar_chart(
            [f"{h:02d}" for h in range(24)],
            report.by_hour,
            chart_id="chart-per-hour",
            title="Contacts by hour of the day",
            description="Contacts by the local hour they started; the busiest hours stand out.",
            highlight={h for h, n in enumerate(report.by_hour) if n and n == busiest},
            highlight_class="chart-bar-peak",
            label_every=2,
        ),
        "waits": line_chart(
            labels,
            minutes,
            chart_id="chart-waits",
            title="Wait for a supporter, per day (minutes)",
            description="Median and 90th percentile wait of texters matched each day.",
            unit="min",
            label_every=every,
        ),
        "abandoned": bar_chart(
            labels,
            [d.abandoned for d in report.days],
            chart_id="chart-abandoned",
            title="Left before matched, per day",
            description=f"{report.abandoned} texters left the queue before a supporter took "
            "the chat.",
            highlight=range(len(report.days)),
            label_every=every,
        ),
        "ratings": bar_chart(
            ["1", "2", "3", "4", "5"],
            list(report.ratings.values()),
            chart_id="chart-ratings",
            title="Ratings given (1 to 5)",
            description=", ".join(f"{k}: {v}" for k, v in report.ratings.items()),
        ),
    }


def _asked_report(
    session: Session,
) -> tuple[ReportForm, ZoneInfo, stats.Report, record_stats.RecordFigures]:
    """Return the request's form, the line's time zone, and the report and after-chat records
    for the span of local days the form asks."""
    form = ReportForm(request.args)
    tz = line().timezone(session)
    first, last = _span(form, local_today(tz))
    return form, tz, load_report(session, first, last), load_records(session, first, last)


@bp.get("/")
def index() -> str:
    """Show the reports for a span of days."""
    with line().db.session() as session:
        form, tz, report, records = _asked_report(session)
    return render_template(
        "console/reports.html",
        form=form,
        report=report,
        records=records,
        charts=charts(report) | record_charts(records),
        duration=format_duration,
        timezone=str(tz),
        first=report.first,
        last=report.last,
    )


@bp.get("/export.csv")
def export() -> Response:
    """Download the report's daily figures as CSV."""
    with line().db.session() as session:
        _form, _tz, report, records = _asked_report(session)
        first, last = report.first, report.last
        audit(session, "report.exported", "daily report", f"{first} to {last}")
    buffer = io.StringIO()
    # Each day's row carries the after-chat counts too (issue 21): one table, one header.
    header, extra = record_stats.record_columns(records)
    daily = stats.report_rows(report)
    rows = [daily[0] + header] + [row + more for row, more in zip(daily[1:], extra, strict=True)]
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="peerline-report-{first}-to-{last}.csv"'
        },
    )
