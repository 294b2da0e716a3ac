"""UTC timestamps: every backend stores and returns the instant it was given."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pendulum
import pytest
from sqlalchemy import Engine, create_engine, delete, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import Transaction, history

from .models import Article
from .support import FrozenClock

History = Article.__history__

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
        connection.execute(Transaction.__table__.insert().values(timestamp=local))
        stored = connection.scalar(select(Transaction.timestamp))
    assert stored == expected


def test_times_read_in_a_session_time_zone_with_daylight_saving_time(
    engine: Engine, clock: FrozenClock
) -> None:
    """PostgreSQL returns times in the session's time zone: in Paris, the versions written at
    00:30 and 01:30 UTC on 2024-10-27 both come back as 02:30, told apart only by ``fold``."""
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL returns times in the session's time zone")
    paris = create_engine(engine.url, connect_args={"options": "-c timezone=Europe/Paris"})
    try:
        with Session(paris) as session:
            session.execute(delete(History))
            session.execute(delete(Article))
            clock.now = pendulum.datetime(2024, 10, 27, 0, 30, tz="UTC")
            session.add(Article(id=1, title="a"))
            session.commit()
            clock.now = pendulum.datetime(2024, 10, 27, 1, 30, tz="UTC")
            session.get_one(Article, 1).title = "b"
            session.commit()
            for _ in range(2):
                starts = [v.valid_from for v in history(session, Article, 1)]
                assert starts == [
                    dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.timezone.utc),
                    dt.datetime(2024, 10, 27, 1, 30, tzinfo=dt.timezone.utc),
                ]
    finally:
        paris.dispose()
