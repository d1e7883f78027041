"""The working-day calendar (China's 2025 and 2026 holidays and make-up working weekends),
due dates rolled forward, plan lines that sum to the price, and allocation oldest due first.
Pure functions: no database."""

from __future__ import annotations

from datetime import date

import pytest

from api.errors import ValidationFailed
from api.sales.plan_models import PlanLine
from api.sales.plan_service import PlanInput, allocate, draft_lines
from api.sales.workdays import Calendar, add_months, known

D = date.fromisoformat
TODAY = D("2025-12-01")


def test_2026_spring_festival_and_its_make_up_saturdays():
    cal = Calendar()
    # 2026-02-15 (Sun) to 02-23 (Mon) off; Sat 02-14 and Sat 02-28 worked.
    for day in ("2026-02-15", "2026-02-16", "2026-02-18", "2026-02-20", "2026-02-23"):
        assert not cal.is_working(D(day)), day
    assert cal.is_working(D("2026-02-14")) and cal.is_working(D("2026-02-28"))
    assert cal.is_working(D("2026-02-13")) and cal.is_working(D("2026-02-24"))
    assert cal.roll(D("2026-02-16")) == D("2026-02-24")  # the first working day after
    assert cal.roll(D("2026-02-14")) == D("2026-02-14")  # a worked Saturday stays
    assert cal.roll(D("2026-02-28")) == D("2026-02-28")
    assert cal.roll(D("2026-03-01")) == D("2026-03-02")  # an ordinary Sunday


def test_2026_national_day_new_year_and_labour_day():
    cal = Calendar()
    assert not any(cal.is_working(D(f"2026-10-0{d}")) for d in range(1, 8))
    assert cal.roll(D("2026-10-01")) == D("2026-10-08")
    assert cal.is_working(D("2026-09-20"))  # Sunday worked before National Day
    assert cal.is_working(D("2026-10-10"))  # Saturday worked after it
    assert cal.roll(D("2026-10-10")) == D("2026-10-10")
    assert not cal.is_working(D("2026-09-25"))  # Mid-Autumn (Fri)
    assert cal.roll(D("2026-09-25")) == D("2026-09-28")
    assert cal.roll(D("2026-01-01")) == D("2026-01-04")  # New Year: Sun 01-04 is worked
    assert cal.roll(D("2026-05-01")) == D("2026-05-06") and cal.is_working(D("2026-05-09"))
    assert cal.roll(D("2026-06-19")) == D("2026-06-22")  # Dragon Boat
    assert cal.roll(D("2026-04-04")) == D("2026-04-07")  # Qingming


def test_2025_spring_festival_and_national_day():
    cal = Calendar()
    assert cal.roll(D("2025-01-28")) == D("2025-02-05")
    assert cal.is_working(D("2025-01-26")) and cal.is_working(D("2025-02-08"))
    assert cal.roll(D("2025-10-01")) == D("2025-10-09")
    assert cal.is_working(D("2025-09-28")) and cal.is_working(D("2025-10-11"))


def test_years_not_held_fall_back_to_weekends_and_say_so():
    assert known(2025) and known(2026) and not known(2027)
    cal = Calendar()
    assert cal.roll(D("2027-02-06")) == D("2027-02-08")  # Sat -> Mon, holidays unknown
    assert not cal.known([D("2026-12-01"), D("2027-01-04")])
    assert cal.known([D("2026-12-01")])


def test_the_tenants_declarations_win():
    cal = Calendar({D("2026-12-07"): False, D("2026-12-12"): True, D("2026-10-05"): True})
    assert cal.roll(D("2026-12-07")) == D("2026-12-08")  # a Monday declared off
    assert cal.roll(D("2026-12-12")) == D("2026-12-12")  # a Saturday declared worked
    assert cal.roll(D("2026-10-01")) == D("2026-10-05")  # worked inside National Day
    everything_off = Calendar(
        {D("2026-12-01") + (D("2026-12-02") - D("2026-12-01")) * i: False for i in range(70)}
    )
    with pytest.raises(ValueError):
        everything_off.roll(D("2026-12-01"))


def test_months_are_added_to_the_end_of_shorter_months():
    assert add_months(D("2026-01-31"), 1) == D("2026-02-28")
    assert add_months(D("2028-01-31"), 1) == D("2028-02-29")
    assert add_months(D("2026-11-30"), 3) == D("2027-02-28")
    assert add_months(D("2026-12-15"), 12) == D("2027-12-15")
    assert add_months(D("2026-03-31"), 0) == D("2026-03-31")


def _lines(kind, price, **kw):
    return draft_lines(
        PlanInput(contract_id=None, kind=kind, first_due=D("2026-01-10"), **kw),  # type: ignore[arg-type]
        price,
        TODAY,
        "zh-CN",
        15,
    )


def test_plans_sum_exactly_to_the_price_remainder_on_the_first_instalment():
    price = 1_000_001  # ¥10,000.01, split in 3 after a down payment
    lines = _lines("instalments", price, down_payment=300_000, instalments=3, interval_months=2)
    assert [x.kind for x in lines] == ["down_payment", "instalment", "instalment", "instalment"]
    assert [x.amount for x in lines] == [300_000, 233_335, 233_333, 233_333]
    assert sum(x.amount for x in lines) == price
    assert [x.scheduled_on for x in lines] == [
        D("2026-01-10"),
        D("2026-03-10"),
        D("2026-05-10"),
        D("2026-07-10"),
    ]
    assert [x.label for x in lines][1:] == ["第1期", "第2期", "第3期"]
    # No down payment: the first instalment on firstDue.
    lines = _lines("instalments", 10, instalments=3)
    assert [(x.amount, x.scheduled_on) for x in lines] == [
        (4, D("2026-01-10")),
        (3, D("2026-02-10")),
        (3, D("2026-03-10")),
    ]
    [full] = _lines("full", 123_456_789)
    assert (full.kind, full.amount, full.label) == ("instalment", 123_456_789, "一次性付款")


def test_mortgage_plans_and_the_combination():
    loan_due = D("2026-03-01")
    lines = _lines("commercial_mortgage", 3_000_000_00, down_payment=900_000_00, loan_due=loan_due)
    assert [(x.kind, x.loan, x.amount) for x in lines] == [
        ("down_payment", None, 900_000_00),
        ("loan_part", "commercial", 2_100_000_00),
    ]
    lines = _lines(
        "combination",
        3_000_000_00,
        down_payment=900_000_00,
        provident_amount=1_200_000_00,
        loan_due=loan_due,
    )
    assert [(x.loan, x.amount) for x in lines] == [
        (None, 900_000_00),
        ("provident", 1_200_000_00),
        ("commercial", 900_000_00),
    ]
    assert sum(x.amount for x in lines) == 3_000_000_00
    [_, loan] = _lines("provident_mortgage", 100, down_payment=15, loan_due=loan_due)
    assert (loan.loan, loan.amount, loan.label) == ("provident", 85, "公积金贷款")


@pytest.mark.parametrize(
    ("kind", "kw", "field"),
    [
        ("full", {"down_payment": 1}, "downPayment"),
        ("instalments", {"instalments": 0}, "instalments"),
        ("instalments", {"instalments": 61}, "instalments"),
        ("instalments", {"instalments": 5}, "instalments"),  # 3 minor units over 5 lines
        ("instalments", {"instalments": 2, "interval_months": 13}, "intervalMonths"),
        ("instalments", {"instalments": 2, "down_payment": -1}, "downPayment"),
        ("instalments", {"instalments": 200, "interval_months": 12}, "instalments"),
        ("commercial_mortgage", {"down_payment": 3, "loan_due": D("2026-03-01")}, "downPayment"),
        ("commercial_mortgage", {"down_payment": 2}, "loanDue"),
        ("commercial_mortgage", {"down_payment": 2, "loan_due": D("2026-01-01")}, "loanDue"),
        ("combination", {"down_payment": 1, "loan_due": D("2026-03-01")}, "providentAmount"),
        (
            "combination",
            {"down_payment": 1, "provident_amount": 3, "loan_due": D("2026-03-01")},
            "providentAmount",
        ),
        ("provident_mortgage", {"down_payment": 2, "loan_due": D("2099-01-01")}, "loanDue"),
        ("barter", {}, "kind"),
    ],
)
def test_plans_that_cannot_be_are_refused_by_field(kind, kw, field):
    with pytest.raises(ValidationFailed) as err:
        _lines(kind, 3 if kind != "combination" else 4, **kw)
    assert err.value.field == field, err.value.message


def test_a_mortgage_needs_the_minimum_down_payment():
    due = D("2026-03-01")
    with pytest.raises(ValidationFailed) as err:
        _lines("commercial_mortgage", 10_000, down_payment=1_499, loan_due=due)
    assert err.value.field == "downPayment" and "15%" in err.value.message
    assert len(_lines("commercial_mortgage", 10_000, down_payment=1_500, loan_due=due)) == 2


def test_a_first_due_date_in_the_past_or_far_future_is_refused():
    for first in (D("2025-11-30"), D("2036-01-01")):
        with pytest.raises(ValidationFailed) as err:
            draft_lines(PlanInput(None, "full", first), 100, TODAY, "en", 15)  # type: ignore[arg-type]
        assert err.value.field == "firstDue"


def _pl(seq, amount, due):
    return PlanLine(
        seq=seq,
        kind="instalment",
        loan=None,
        label=str(seq),
        amount=amount,
        scheduled_on=D(due),
        due_on=D(due),
    )


def test_collections_are_allocated_oldest_due_first():
    lines = [_pl(1, 100, "2026-03-02"), _pl(2, 50, "2026-01-05"), _pl(3, 70, "2026-03-02")]
    got = {x.seq: (x.paid, x.outstanding, x.overdue) for x in allocate(lines, 120, D("2026-03-01"))}
    # Line 2 (due first) is paid in full, then line 1; line 3 (same day, later in the plan)
    # gets nothing.
    assert got == {2: (50, 0, False), 1: (70, 30, False), 3: (0, 70, False)}
    late = {x.seq: x.overdue for x in allocate(lines, 120, D("2026-03-03"))}
    assert late == {1: True, 2: False, 3: True}
    assert sum(x.paid for x in allocate(lines, 220, TODAY)) == 220
