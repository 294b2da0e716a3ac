"""UTC timestamps: every backend stores and returns the instant it was given."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from sqlalchemy_chronicle import Transaction

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    "fold", [0, 1, 0, 1], ids=["first", "second", "first-again", "second-again"]
)
def test_the_repeated_hour_of_daylight_saving_time_keeps_both_instants(
    db: Engine, fold: int
) -> None:
    """02:30 in Paris on 2024-10-27 happens twice (00:30 and 01:30 UTC); conversions are
    remembered per value, and the two local times compare equal, so each must still convert to
    its own instant, whichever comes first."""
    local = dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=fold)
    expected = dt.datetime(2024, 10, 27, 0 + fold, 30, tzinfo=dt.timezone.utc)
    with db.begin() as connection:
        connection.execute(Transaction.__table__.delete())
        connection.execute(Transaction.__table__.insert().values(id=1, timestamp=local))
        stored = connection.scalar(select(Transaction.timestamp))
    assert stored == expected
