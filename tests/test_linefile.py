"""Tests for the YAML line file: reading, every kind of mistake, and writing it back."""

from datetime import date
from zoneinfo import ZoneInfo

import pytest
import yaml

from peerline.service import linefile, rota
from peerline.service.linefile import (
    DEMO_LINE_FILE,
    CoverSpec,
    GroupSpec,
    LineFile,
    LineFileError,
    ShiftSpec,
    SupporterSpec,
    TimeOffSpec,
    dump,
    parse,
    to_rota,
)
from tests.support.lines import SAM_MONDAYS

BRIEF_EXAMPLE = """\
timezone: America/Toronto
supporters:
  - name: Sam
    phone: "+14165550101"
    languages: [en, es]
    capacity: 1
    shifts:
      - {days: [mon, wed, fri], start: "09:00", end: "17:00"}
      - {days: [sat], start: "22:00", end: "02:00"}      # overnight
      - {days: [sun], start: "00:00", end: "24:00"}      # all day
    time_off:
      - {from: "2026-12-24", to: "2026-12-26"}
groups:
  - name: Online peer support group
    days: [mon, fri]
    start: "13:00"
    minutes: 60
    skip_holidays: CA-ON        # country or country-subdivision, via `holidays`
    join: "https://example.org/groups"
"""


def problems_of(text: str, default_region: str = "US") -> list[str]:
    with pytest.raises(LineFileError) as caught:
        parse(text, default_region)
    return caught.value.problems


def test_parse_reads_the_brief_example() -> None:
    line = parse(BRIEF_EXAMPLE)
    assert line == LineFile(
        timezone="America/Toronto",
        supporters=[
            SupporterSpec(
                name="Sam",
                phone="+14165550101",
                languages=["en", "es"],
                capacity=1,
                shifts=[
                    ShiftSpec(days=["mon", "wed", "fri"], start="09:00", end="17:00"),
                    ShiftSpec(days=["sat"], start="22:00", end="02:00"),
                    ShiftSpec(days=["sun"], start="00:00", end="24:00"),
                ],
                time_off=[TimeOffSpec(from_=date(2026, 12, 24), to=date(2026, 12, 26))],
            )
        ],
        groups=[
            GroupSpec(
                name="Online peer support group",
                days=["mon", "fri"],
                start="13:00",
                minutes=60,
                skip_holidays="CA-ON",
                join="https://example.org/groups",
            )
        ],
    )


def test_parse_fills_in_defaults() -> None:
    [sam] = parse(SAM_MONDAYS).supporters
    assert sam.languages == ["en"]
    assert (sam.capacity, sam.takes_calls, sam.on_call, sam.active) == (1, True, False, True)
    assert (sam.cover, sam.time_off) == ([], [])
    assert parse("timezone: UTC").supporters == []


def test_parse_normalises_what_it_reads() -> None:
    line = parse(
        """\
timezone: Europe/London
holidays: gb-eng
supporters:
  - name: "  Ada  "
    phone: "020 7946 0123"
    languages: [EN, fr, en]
    shifts:
      - {days: [Fri, mon, fri], start: "9:00", end: "17:30"}
groups:
  - {name: Drop-in, days: sat, start: "10:00", minutes: 90,
     cancelled: ["2026-08-01", 2026-05-02, "2026-08-01"]}
""",
        default_region="GB",
    )
    assert line.holidays == "GB-ENG"
    [ada] = line.supporters
    assert (ada.name, ada.phone, ada.languages) == ("Ada", "+442079460123", ["en", "fr"])
    assert ada.shifts == [ShiftSpec(days=["mon", "fri"], start="09:00", end="17:30")]
    [group] = line.groups
    assert group.days == ["sat"]
    assert group.cancelled == [date(2026, 5, 2), date(2026, 8, 1)]


def test_yaml_base_60_times_are_read_as_times() -> None:
    # The trap: YAML 1.1 reads unquoted 17:30 as 1050 and 9:00 as 540, but 09:00 as a string.
    assert yaml.safe_load("a: 17:30\nb: 9:00\nc: 09:00") == {"a": 1050, "b": 540, "c": "09:00"}
    line = parse(
        """\
timezone: America/Toronto
supporters:
  - name: Sam
    phone: "+14165550101"
    shifts:
      - {days: [mon], start: 9:00, end: 17:30}
      - {days: [tue], start: 09:00, end: 24:00}
"""
    )
    assert [(s.start, s.end) for s in line.supporters[0].shifts] == [
        ("09:00", "17:30"),
        ("09:00", "24:00"),
    ]


def test_a_number_where_a_time_belongs_asks_for_quotes() -> None:
    text = SAM_MONDAYS.replace('start: "09:00"', "start: 900")
    assert problems_of(text) == [
        'supporters[0].shifts[0].start: 900 is not a time HH:MM (write times in quotes: "09:00")'
    ]


def test_dates_may_be_yaml_dates_or_quoted_strings() -> None:
    text = SAM_MONDAYS + '    time_off:\n      - {from: 2026-12-24, to: "2026-12-26"}\n'
    [sam] = parse(text).supporters
    assert sam.time_off == [TimeOffSpec(from_=date(2026, 12, 24), to=date(2026, 12, 26))]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'end: "17:00"',
            'end: "25:00"',
            "supporters[0].shifts[0].end: '25:00' is not a time HH:MM",
        ),
        (
            'start: "09:00"',
            'start: "24:00"',
            "supporters[0].shifts[0].start: '24:00' is only allowed as an end time",
        ),
        (
            "days: [mon]",
            "days: [mon, funday]",
            "supporters[0].shifts[0].days: 'funday' is not a day",
        ),
        ("days: [mon]", "days: []", "supporters[0].shifts[0].days: [] is not a list of days"),
        (
            'end: "17:00"}',
            'end: "17:00", run_on_holidays: sometimes}',
            "supporters[0].shifts[0].run_on_holidays: 'sometimes' is not true or false",
        ),
        (
            'end: "17:00"}',
            'end: "17:00", run_on_holiday: true}',
            "supporters[0].shifts[0].run_on_holiday: unknown key (allowed: days, start, end, "
            "run_on_holidays)",
        ),
        ("days: [mon],", "", "supporters[0].shifts[0].days: is missing"),
        (
            "timezone: America/Toronto",
            "timezone: America/Torronto",
            "timezone: 'America/Torronto' is not a time zone like America/Toronto",
        ),
        (
            "timezone: America/Toronto",
            "timezone: ../../etc/passwd",
            "timezone: '../../etc/passwd' is not a time zone",
        ),
        ("timezone: America/Toronto", "timezone: America", "timezone: 'America' is not a time"),
        ("timezone: America/Toronto", "timezone: localtime", "timezone: 'localtime' is not a"),
        ("timezone: America/Toronto", "timezone:", "timezone: None is not a non-empty text"),
        (
            '"+14165550101"',
            '"+1416555010"',
            "supporters[0].phone: '+1416555010' is not a valid phone number",
        ),
        ('"+14165550101"', '"call me"', "supporters[0].phone: 'call me' is not a phone number"),
        (
            '"+14165550101"',
            "+14165550101",
            'supporters[0].phone: 14165550101: write phone numbers in quotes, like "+14165550101"',
        ),
        ("name: Sam", "name: ''", "supporters[0].name: '' is not a non-empty text"),
        ("name: Sam", "name: Yes", "supporters[0].name: True is not a non-empty text"),
        ("- name: Sam\n    phone", "- phone", "supporters[0].name: is missing"),
        (
            "    shifts:",
            "    shfits:",
            "supporters[0].shfits: unknown key (allowed: name, phone, languages, capacity,",
        ),
        (
            "    shifts:",
            "    capacity: 0\n    shifts:",
            "supporters[0].capacity: 0 must be at least 1",
        ),
        (
            "    shifts:",
            "    capacity: yes\n    shifts:",
            "supporters[0].capacity: True is not a whole number",
        ),
        (
            "    shifts:",
            "    languages: [en, no]\n    shifts:",
            "supporters[0].languages: False is not a language code like en or es (quote it)",
        ),
        (
            "    shifts:",
            "    on_call: 1\n    shifts:",
            "supporters[0].on_call: 1 is not true or false",
        ),
        (
            '    shifts:\n      - {days: [mon], start: "09:00", end: "17:00"}\n',
            "    shifts: {days: [mon]}\n",
            "supporters[0].shifts: expected a list, got {'days': ['mon']}",
        ),
        (
            '    shifts:\n      - {days: [mon], start: "09:00", end: "17:00"}\n',
            '    time_off:\n      - {from: "2026-12-26", to: "2026-12-24"}\n',
            "supporters[0].time_off[0].to: 2026-12-24 is before from 2026-12-26",
        ),
        (
            '    shifts:\n      - {days: [mon], start: "09:00", end: "17:00"}\n',
            '    time_off:\n      - {from: "Christmas", to: 2026-12-24}\n',
            "supporters[0].time_off[0].from: 'Christmas' is not a date YYYY-MM-DD",
        ),
        (
            '    shifts:\n      - {days: [mon], start: "09:00", end: "17:00"}\n',
            "    time_off:\n      - {from: 2026-12-24, to: 2026-12-24 10:00:00}\n",
            "supporters[0].time_off[0].to: datetime.datetime(2026, 12, 24, 10, 0) is not a date",
        ),
        (
            '    shifts:\n      - {days: [mon], start: "09:00", end: "17:00"}\n',
            '    cover:\n      - {date: "2026-02-30", start: "09:00", end: "17:00"}\n',
            "supporters[0].cover[0].date: '2026-02-30' is not a date YYYY-MM-DD",
        ),
        (
            "timezone: America/Toronto",
            "timezone: America/Toronto\nholidays: XX",
            "holidays: 'XX': the holidays package does not know country 'XX'",
        ),
        (
            "timezone: America/Toronto",
            "timezone: America/Toronto\nholidays: CA-XY",
            "holidays: 'CA-XY': country CA has no subdivision 'XY'",
        ),
        (
            "timezone: America/Toronto",
            "timezone: America/Toronto\ngroupz: []",
            "groupz: unknown key (allowed: timezone, holidays, supporters, groups)",
        ),
    ],
)
def test_each_mistake_is_reported_at_its_location(old: str, new: str, problem: str) -> None:
    assert old in SAM_MONDAYS
    found = problems_of(SAM_MONDAYS.replace(old, new))
    assert len(found) == 1, found
    assert found[0].startswith(problem), found


GROUP = """\
timezone: America/Toronto
groups:
  - name: Online peer support group
    days: [mon, fri]
    start: "13:00"
    minutes: 60
"""


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("minutes: 60", "minutes: 0", "groups[0].minutes: 0 must be at least 1 and at most 1440"),
        ("minutes: 60", "minutes: 2000", "groups[0].minutes: 2000 must be at least 1"),
        ("minutes: 60", "minutes: '60'", "groups[0].minutes: '60' is not a whole number"),
        ("    minutes: 60\n", "", "groups[0].minutes: is missing"),
        ('start: "13:00"', 'start: "24:00"', "groups[0].start: '24:00' is only allowed as an end"),
        (
            "minutes: 60",
            "minutes: 60\n    skip_holidays: CA-QQ",
            "groups[0].skip_holidays: 'CA-QQ': country CA has no subdivision 'QQ'",
        ),
        (
            "minutes: 60",
            "minutes: 60\n    cancelled: [2026-01-05, soon]",
            "groups[0].cancelled[1]: 'soon' is not a date YYYY-MM-DD",
        ),
        (
            "minutes: 60",
            "minutes: 60\n    zoom: yes",
            "groups[0].zoom: unknown key (allowed: name, days, start, minutes, skip_holidays,",
        ),
        ("days: [mon, fri]", "days: [mon, fri, xyz]", "groups[0].days: 'xyz' is not a day"),
    ],
)
def test_each_group_mistake_is_reported_at_its_location(old: str, new: str, problem: str) -> None:
    assert old in GROUP
    found = problems_of(GROUP.replace(old, new))
    assert len(found) == 1, found
    assert found[0].startswith(problem), found


def test_all_problems_are_reported_together() -> None:
    text = """\
timezone: Mars/Olympus
supporters:
  - name: Sam
    phone: "+14165550101"
    shifts:
      - {days: [mon], start: "09:00", end: "25:00"}
      - {days: [tue], start: "noon", end: "17:00"}
  - name: Rosa
    phone: "(416) 555-0101"
  - phone: "+14165550103"
"""
    with pytest.raises(LineFileError) as caught:
        parse(text)
    assert caught.value.problems == [
        "timezone: 'Mars/Olympus' is not a time zone like America/Toronto",
        "supporters[0].shifts[0].end: '25:00' is not a time HH:MM",
        "supporters[0].shifts[1].start: 'noon' is not a time HH:MM",
        "supporters[1].phone: +14165550101 is already the phone of supporters[0]",
        "supporters[2].name: is missing",
    ]
    assert str(caught.value) == "\n".join(caught.value.problems)


def test_duplicate_phones_are_caught_after_normalising() -> None:
    text = SAM_MONDAYS + '  - name: Sam again\n    phone: "416-555-0101"\n'
    assert problems_of(text) == [
        "supporters[1].phone: +14165550101 is already the phone of supporters[0]"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected a mapping with keys timezone"),
        ("- a\n- b\n", "expected a mapping with keys timezone"),
        ("supporters: []\n", "timezone: is missing"),
        ("timezone: UTC\nsupporters: [1]\n", "supporters[0]: expected a mapping"),
        ("timezone: UTC\nsupporters: {name: Sam}\n", "supporters: expected a list"),
    ],
)
def test_the_file_shape_is_checked(text: str, problem: str) -> None:
    assert problems_of(text)[0].startswith(problem)


def test_invalid_yaml_names_the_line_and_column() -> None:
    with pytest.raises(LineFileError, match=r"^line 3, column 14: not valid YAML: mapping values"):
        parse("timezone: UTC\nsupporters:\n  - name: Sam: Jones\n")


def test_phone_default_region() -> None:
    text = SAM_MONDAYS.replace('"+14165550101"', '"020 7946 0123"')
    assert parse(text, default_region="GB").supporters[0].phone == "+442079460123"
    assert problems_of(text)[0].startswith("supporters[0].phone: '020 7946 0123' is not a valid")


# --- writing -------------------------------------------------------------------------------

EVERYTHING = LineFile(
    timezone="Europe/London",
    holidays="NO",  # Norway: a bare NO would read back as false in YAML 1.1
    supporters=[
        SupporterSpec(
            name="José Ñúñez",
            phone="+442079460123",
            languages=["es", "en"],
            capacity=3,
            takes_calls=False,
            on_call=True,
            active=False,
            shifts=[
                ShiftSpec(days=["mon", "tue"], start="09:00", end="17:00", run_on_holidays=True),
                ShiftSpec(days=["sun"], start="22:30", end="06:15"),
            ],
            cover=[CoverSpec(date=date(2026, 3, 29), start="00:00", end="24:00")],
            time_off=[TimeOffSpec(from_=date(2026, 8, 1), to=date(2026, 8, 14))],
        ),
        SupporterSpec(name="Yes", phone="+14165550102", shifts=[]),
        SupporterSpec(name="12:30", phone="+14165550103", languages=["no"]),
    ],
    groups=[
        GroupSpec(
            name="Evening group: #1, [online]",
            days=["wed"],
            start="19:00",
            minutes=90,
            skip_holidays="GB-ENG",
            join="https://example.org/join?a=1&b=2",
            cancelled=[date(2026, 12, 23), date(2026, 12, 30)],
        ),
        GroupSpec(name="Walk", days=["sat"], start="10:00", minutes=45),
    ],
)


@pytest.mark.parametrize(
    "line",
    [parse(BRIEF_EXAMPLE), parse(DEMO_LINE_FILE), EVERYTHING],
    ids=["brief", "demo", "everything"],
)
def test_dump_reads_back_to_the_same_line(line: LineFile) -> None:
    text = dump(line)
    assert parse(text) == line
    assert dump(parse(text)) == text


def test_dump_writes_a_sheet_people_can_read() -> None:
    text = dump(parse(BRIEF_EXAMPLE))
    assert text == (
        "timezone: America/Toronto\n"
        "supporters:\n"
        "  - name: Sam\n"
        '    phone: "+14165550101"\n'
        "    languages: [en, es]\n"
        "    capacity: 1\n"
        "    shifts:\n"
        '      - {days: [mon, wed, fri], start: "09:00", end: "17:00"}\n'
        '      - {days: [sat], start: "22:00", end: "02:00"}\n'
        '      - {days: [sun], start: "00:00", end: "24:00"}\n'
        "    time_off:\n"
        '      - {from: "2026-12-24", to: "2026-12-26"}\n'
        "groups:\n"
        "  - name: Online peer support group\n"
        "    days: [mon, fri]\n"
        '    start: "13:00"\n'
        "    minutes: 60\n"
        "    skip_holidays: CA-ON\n"
        "    join: https://example.org/groups\n"
    )


def test_dump_orders_days_through_the_week() -> None:
    line = LineFile(
        timezone="UTC",
        supporters=[
            SupporterSpec(
                name="Sam",
                phone="+14165550101",
                shifts=[ShiftSpec(days=["sun", "mon"], start="09:00", end="10:00")],
            )
        ],
        groups=[],
    )
    assert "{days: [mon, sun]," in dump(line)


# --- using it ------------------------------------------------------------------------------


def test_to_rota_converts_a_supporter() -> None:
    [sam] = parse(BRIEF_EXAMPLE).supporters
    sam.cover = [CoverSpec(date=date(2026, 7, 2), start="18:00", end="24:00")]
    assert to_rota(sam) == rota.SupporterRota(
        shifts=(
            rota.WeeklyShift(frozenset({0, 2, 4}), 540, 1020),
            rota.WeeklyShift(frozenset({5}), 1320, 120),
            rota.WeeklyShift(frozenset({6}), 0, 1440),
        ),
        cover=(rota.CoverShift(date(2026, 7, 2), 1080, 1440),),
        time_off=(rota.TimeOff(date(2026, 12, 24), date(2026, 12, 26)),),
    )


def test_the_demo_line_always_has_someone_on_shift() -> None:
    line = parse(DEMO_LINE_FILE)
    tz = ZoneInfo(line.timezone)
    closures = rota.Closures(line.holidays)
    rotas = {spec.name: to_rota(spec) for spec in line.supporters}
    assert len(rotas) == 3
    assert any("es" in spec.languages for spec in line.supporters)
    assert len(line.groups) == 1
    start = rota.wall_to_utc(date(2026, 1, 1), 0, tz)
    end = rota.wall_to_utc(date(2027, 1, 1), 0, tz)
    for one in rotas.values():
        for span_start, _ in rota.intervals(one, tz, start, end, closures):
            assert span_start >= start
    covered = rota.intervals(rotas["Sam"], tz, start, end, closures)
    assert covered == [(start, end)]  # Christmas, Canada Day and both clock changes included


def test_linefile_error_is_a_value_error() -> None:
    assert issubclass(LineFileError, ValueError)
    assert linefile.LineFileError("x").problems == ["x"]
