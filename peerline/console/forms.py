"""The console's forms: each one carries a CSRF token and checks what it is given."""

from __future__ import annotations

import re
from datetime import time
from typing import Any, TypeVar

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import TextInput

from peerline.console.common import EARLIEST, LATEST
from peerline.service.rota import DAY_NAMES, MINUTES_PER_DAY

TIME_FORMATS = ["%H:%M", "%H:%M:%S"]  # browsers may add seconds to a time input
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")

T = TypeVar("T")

# A time as the line writes it: 24-hour "HH:MM", typed, never the browser's 12-hour picker.
CLOCK_ATTRS = {
    "inputmode": "numeric",
    "pattern": "([01][0-9]|2[0-3]):[0-5][0-9]",
    "placeholder": "HH:MM",
    "autocomplete": "off",
    "size": "5",
    "maxlength": "8",
}


class ClockField(TimeField):
    """A 24-hour wall-clock time in the line's time zone, typed as HH:MM."""

    widget = TextInput()

    def __init__(self, label: str, **kwargs: Any) -> None:
        kwargs.setdefault("format", TIME_FORMATS)
        kwargs.setdefault("render_kw", dict(CLOCK_ATTRS))
        super().__init__(label, **kwargs)

    def _value(self) -> str:
        return self.data.strftime("%H:%M") if self.data else (self.raw_data or [""])[0]


def given(value: T | None) -> T:
    """Return a validated field's value, which its validators promise is there."""
    if value is None:
        raise ValueError("a validated field has no value")
    return value


def add_error(field: Any, message: str) -> None:
    """Note a problem found after validation on a field."""
    field.errors = [*field.errors, message]


def start_minute(value: time | None) -> int:
    """Return a start time as minutes after midnight."""
    value = given(value)
    return value.hour * 60 + value.minute


def end_minute(value: time | None) -> int:
    """Return an end time as minutes after midnight; 00:00 as an end means midnight, 24:00."""
    value = given(value)
    minutes = value.hour * 60 + value.minute
    return minutes or MINUTES_PER_DAY


def clock(minutes: int) -> time:
    """Return minutes after midnight as a time for a form (24:00 shows as 00:00)."""
    minutes %= MINUTES_PER_DAY
    return time(minutes // 60, minutes % 60)


def parse_languages(text: str) -> list[str]:
    """Return language codes from "en, es" text, or raise ValueError naming a bad one."""
    codes = [part.strip().lower() for part in re.split(r"[,\s]+", text) if part.strip()]
    for code in codes:
        if not LANGUAGE.match(code):
            raise ValueError(f"{code!r} is not a language code such as en, es or fr-ca")
    if not codes:
        raise ValueError("give at least one language code, such as en")
    return list(dict.fromkeys(codes))


class InRange:
    """Refuse a date outside the years the console works with (2000 to 2199)."""

    def __call__(self, form: Any, field: Any) -> None:
        """Check the date."""
        if field.data is not None and not EARLIEST <= field.data <= LATEST:
            raise ValidationError("Choose a date between the years 2000 and 2199.")


class LoginForm(FlaskForm):
    """Sign in with an email and password."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class PasswordForm(FlaskForm):
    """Change one's own password: the current one, and a strong new one twice."""

    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    new = PasswordField(
        "New password",
        validators=[DataRequired(), Length(min=12, max=1024)],
        description="At least 12 characters and hard to guess: a few unrelated words work well.",
    )
    repeat = PasswordField("New password again", validators=[DataRequired(), Length(max=1024)])

    def validate_repeat(self, field: PasswordField) -> None:
        """Refuse a repeat that differs."""
        if field.data != self.new.data:
            raise ValidationError("The two new passwords differ.")


class AccessForm(FlaskForm):
    """An admin sets an account's role and whether it may open transcripts."""

    role = StringField("Role", validators=[DataRequired(), Length(max=16)])
    transcripts = BooleanField("May open transcripts")

    def validate_role(self, field: StringField) -> None:
        """Refuse a role that does not exist."""
        if field.data not in ("admin", "coordinator"):
            raise ValidationError("Choose admin or coordinator.")


class SignOutForm(FlaskForm):
    """Sign out: a token and nothing else."""


class ConfirmForm(FlaskForm):
    """Confirm an action that changes something: a token and nothing else."""


class SupporterForm(FlaskForm):
    """Add or edit a supporter."""

    name = StringField(
        "First name or alias",
        validators=[DataRequired(), Length(max=80)],
        description="Texters see this name, so a first name or alias only.",
    )
    phone = StringField(
        "Mobile number",
        validators=[DataRequired(), Length(max=32)],
        description="Their own phone; never shown to texters.",
    )
    languages = StringField(
        "Languages",
        default="en",
        validators=[DataRequired(), Length(max=64)],
        description="Codes separated by commas, such as: en, es",
    )
    capacity = IntegerField(
        "Chats at once",
        default=1,
        validators=[InputRequired(), NumberRange(min=1, max=10)],
        description="Above 1 only helps with a pool of relay numbers.",
    )
    takes_sms = BooleanField("Takes SMS chats", default=True)
    takes_calls = BooleanField("Takes calls", default=True)
    on_call = BooleanField("On-call coordinator (gets safety alerts)", default=False)

    def validate_languages(self, field: StringField) -> None:
        """Refuse anything that is not a list of language codes."""
        try:
            parse_languages(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class SupporterChoice:
    """Refuse a supporter id that is not among the form's `options`."""

    def __init__(self, allow_none: bool = False) -> None:
        self.allow_none = allow_none

    def __call__(self, form: Any, field: Any) -> None:
        """Check the chosen id."""
        if self.allow_none and not field.data:
            return
        if field.data not in {value for value, _ in form.options}:
            raise ValidationError("Choose a supporter from the list.")


class ChoosesSupporter(FlaskForm):
    """A form with a supporter picked from a list the view fills in (`options`)."""

    # (id, name) pairs; rendered as a <select> by the template, checked by SupporterChoice.
    options: list[tuple[int, str]] = []

    supporter_id = IntegerField("Supporter", validators=[InputRequired(), SupporterChoice()])


class ShiftForm(ChoosesSupporter):
    """Add or move a weekly shift."""

    # Plain strings are valid choices (value and label alike); the WTForms stubs lag behind.
    days = SelectMultipleField(
        "Days",
        choices=list(DAY_NAMES),  # type: ignore[arg-type]
        validators=[DataRequired()],
    )
    start = ClockField(
        "Starts", validators=[InputRequired()], description="24-hour line time, as HH:MM."
    )
    end = ClockField(
        "Ends",
        validators=[InputRequired()],
        description="An end at or before the start runs past midnight.",
    )
    run_on_holidays = BooleanField("Runs on public holidays too")

    def validate_end(self, field: TimeField) -> None:
        """Refuse a shift that ends when it starts (other than a whole day)."""
        if self.start.data and field.data and self.start.data == field.data:
            if start_minute(field.data) != 0:
                raise ValidationError("A shift cannot end when it starts.")


class TimeOffForm(ChoosesSupporter):
    """Give a supporter whole days off, or part of a day (from/to times)."""

    start = DateField("From", validators=[InputRequired(), InRange()])
    end = DateField("To (included)", validators=[InputRequired(), InRange()])
    from_time = ClockField(
        "From time",
        validators=[Optional()],
        description="Optional, 24-hour line time: leave both times empty for whole days.",
    )
    to_time = ClockField("To time", validators=[Optional()], description="00:00 means midnight.")

    def validate_end(self, field: DateField) -> None:
        """Refuse time off that ends before it starts."""
        if self.start.data and field.data and field.data < self.start.data:
            raise ValidationError("Time off cannot end before it starts.")

    def validate(self, extra_validators: Any = None) -> bool:
        """Refuse one time without the other, or a part of a day that ends before it starts."""
        valid = super().validate(extra_validators)
        first, last = self.from_time.data, self.to_time.data
        if valid and (first is None) != (last is None):
            add_error(self.to_time, "Give both times for part of a day, or neither.")
            return False
        if valid and self.start.data and self.end.data and first and last:
            begins = (self.start.data, start_minute(first))
            if (self.end.data, end_minute(last)) <= begins:
                add_error(self.to_time, "Time off cannot end before it starts.")
                return False
        return valid

    def minutes(self) -> tuple[int | None, int | None]:
        """Return the from/to minutes of part of a day, or (None, None) for whole days."""
        if self.from_time.data is None or self.to_time.data is None:
            return None, None
        return start_minute(self.from_time.data), end_minute(self.to_time.data)


class CoverForm(ChoosesSupporter):
    """Add a one-off cover shift on a date."""

    on_date = DateField("Date", validators=[InputRequired(), InRange()])
    start = ClockField(
        "Starts", validators=[InputRequired()], description="24-hour line time, as HH:MM."
    )
    end = ClockField("Ends", validators=[InputRequired()])
    covering_for = IntegerField(
        "Covering for",
        default=0,
        validators=[Optional(), SupporterChoice(allow_none=True)],
        description="Optional: give that supporter the day off.",
    )

    def validate_end(self, field: TimeField) -> None:
        """Refuse a cover shift that ends when it starts (other than a whole day)."""
        if self.start.data and field.data and self.start.data == field.data:
            if start_minute(field.data) != 0:
                raise ValidationError("A shift cannot end when it starts.")


def audited_reason(label: str) -> TextAreaField:
    """Return a field for the reason an action is taken, written to the audit log."""
    return TextAreaField(
        label,
        validators=[DataRequired(), Length(min=10, max=500)],
        description="Written to the audit log with your name. At least 10 characters.",
    )


class TranscriptForm(FlaskForm):
    """State why a transcript is being opened."""

    reason = audited_reason("Why do you need to read this conversation?")


class UnblockForm(FlaskForm):
    """Lift the block on a texter's number, saying why."""

    reason = audited_reason("Why is the block lifted?")


class ReportForm(FlaskForm):
    """Choose the days a report covers (a GET form: no token needed)."""

    class Meta:
        csrf = False

    start = DateField("From", validators=[InputRequired(), InRange()])
    end = DateField("To", validators=[InputRequired(), InRange()])

    def validate_end(self, field: DateField) -> None:
        """Refuse a span that ends before it starts or runs past a year."""
        if self.start.data and field.data:
            if field.data < self.start.data:
                raise ValidationError("The span cannot end before it starts.")
            if (field.data - self.start.data).days > 366:
                raise ValidationError("Choose at most a year.")


def choices_of(rows: list[Any]) -> list[tuple[int, str]]:
    """Return (id, name) options for a supporter list."""
    return [(row.id, row.name) for row in rows]
