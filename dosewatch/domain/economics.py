"""Economics as Umeå reports it: home visits avoided, staff hours freed, net SEK.

Each dose a dispenser hands out (taken on time or late) is a medication visit a nurse would
otherwise make, unless the patient had a home-care visit then anyway (``visit_anyway_share``;
IHE 2021:6 found 45 min a day freed per patient, 28 min without the doses that coincide with
another visit, i.e. a share of about 0.38). So:

- visits avoided = doses dispensed × (1 − visit_anyway_share);
- staff hours freed = visits avoided × minutes_per_visit / 60;
- cost per visit = the setting, or minutes_per_visit / 60 × cost_per_hour;
- gross saving = visits avoided × cost per visit;
- dispenser-months = dispenser-days with a planned dose / 30.4375 (the mean month);
- rent = dispenser-months × monthly rent; net = gross − rent;
- per month = net / (days of the period / 30.4375).
"""

from __future__ import annotations

from dataclasses import dataclass

MEAN_MONTH_DAYS = 30.4375


@dataclass(frozen=True)
class EconomicsSettings:
    visit_anyway_share: float = 0.38
    minutes_per_visit: float = 15.0
    cost_per_hour_sek: float = 500.0
    cost_per_visit_sek: float | None = None
    dispenser_rent_sek_per_month: float = 800.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.visit_anyway_share <= 1.0:
            raise ValueError("visit_anyway_share must be between 0 and 1")
        for name in ("minutes_per_visit", "cost_per_hour_sek", "dispenser_rent_sek_per_month"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def visit_cost_sek(self) -> float:
        if self.cost_per_visit_sek is not None:
            return self.cost_per_visit_sek
        return self.minutes_per_visit / 60.0 * self.cost_per_hour_sek


@dataclass(frozen=True)
class Economics:
    doses_dispensed: int
    visits_avoided: float
    staff_hours_freed: float
    gross_saving_sek: float
    dispenser_months: float
    rent_sek: float
    net_sek: float
    months: float
    net_sek_per_month: float | None


def economics(
    doses_dispensed: int, dispenser_days: int, period_days: int, s: EconomicsSettings
) -> Economics:
    visits = doses_dispensed * (1.0 - s.visit_anyway_share)
    hours = visits * s.minutes_per_visit / 60.0
    gross = visits * s.visit_cost_sek
    dispenser_months = dispenser_days / MEAN_MONTH_DAYS
    rent = dispenser_months * s.dispenser_rent_sek_per_month
    months = period_days / MEAN_MONTH_DAYS
    net = gross - rent
    return Economics(
        doses_dispensed=doses_dispensed,
        visits_avoided=round(visits, 1),
        staff_hours_freed=round(hours, 1),
        gross_saving_sek=round(gross, 0),
        dispenser_months=round(dispenser_months, 2),
        rent_sek=round(rent, 0),
        net_sek=round(net, 0),
        months=round(months, 3),
        net_sek_per_month=round(net / months, 0) if months > 0 else None,
    )
