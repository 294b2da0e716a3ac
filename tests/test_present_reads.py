"""An application that does not read the past runs none of the as-of hooks.

The as-of ``do_orm_execute`` listener and the as-of compilers of tables and columns are
registered by the first ``query_as_of()`` or time-travel session of the process (their cost is
measured by ``python -m benchmarks.hooks``, not here). Each test runs in a process of its own,
since the test suite's process has read the past long before.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import Engine, MetaData, Table

SCRIPT = textwrap.dedent(
    """
    import datetime as dt
    import sys

    from sqlalchemy import Integer, String, create_engine, event, select, update
    from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

    from sqlalchemy_chronicle import Versioned, as_of, history, query_as_of
    from sqlalchemy_chronicle.read import _asof, query

    class Base(DeclarativeBase):
        pass

    class PresentPlain(Base):
        __tablename__ = "present_plain"
        id = mapped_column(Integer, primary_key=True)
        name = mapped_column(String(20))

    class PresentKept(Versioned, Base):
        __tablename__ = "present_kept"
        id = mapped_column(Integer, primary_key=True)
        name = mapped_column(String(20))

    def as_of_hooks():
        return (
            event.contains(Session, "do_orm_execute", query._on_execute),
            _asof._compilers_installed,
        )

    engine = create_engine(sys.argv[1])
    ours = [Base.metadata.tables[name] for name in ("present_plain", "present_kept")]
    ours.append(PresentKept.__history__.__table__)
    Base.metadata.drop_all(engine, tables=ours)
    Base.metadata.create_all(engine)  # and the library's tables, where they are missing
    with Session(engine) as session:
        session.add_all([PresentPlain(id=1, name="a"), PresentKept(id=1, name="a")])
        session.commit()
        between = dt.datetime.now(dt.timezone.utc)
        session.execute(update(PresentKept).where(PresentKept.id == 1).values(name="b"))
        session.commit()
        assert session.scalars(select(PresentPlain.name)).all() == ["a"]
        assert [v.name for v in history(session, PresentKept, 1)] == ["a", "b"]
        assert as_of_hooks() == (False, False), as_of_hooks()
        assert session.scalars(query_as_of(PresentKept, between)).one().name == "a"
        assert as_of_hooks() == (True, True), as_of_hooks()
        with as_of(session, between) as past:
            assert past.get(PresentKept, 1).name == "a"
    Base.metadata.drop_all(engine, tables=ours)
    print("ok")
    """
)


def test_the_as_of_hooks_wait_for_the_first_read_of_the_past(
    engine: Engine, tmp_path: Path
) -> None:
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'present.db'}"
    else:
        url = engine.url.render_as_string(hide_password=False)
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        if engine.dialect.name != "sqlite":
            metadata = MetaData()
            for name in ("present_kept_history", "present_kept", "present_plain"):
                Table(name, metadata).drop(engine, checkfirst=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
