"""Restore: a morning of mistakes in an invoicing app, undone in the afternoon.

On Monday two invoices are written. On Tuesday morning a bad bulk update multiplies every amount
by a hundred, someone deletes invoice 2 (its lines go with it) and a customer's name is mangled.
In the afternoon an administrator undoes it all, in one transaction: the customer back to her
previous version, invoice 2 back with its lines, and every line's amount back to what it was
before the bulk update. Nothing of the history is rewritten: each restore is a new version that
says which version it brought back, and the change log shows who undid what.

Run it with an in-memory SQLite database::

    python examples/restore.py

or on a database of your own (the example creates, and first drops, only its own tables, the
``undo_*`` tables and their ``*_history`` tables; ``chronicle_transaction`` and
``chronicle_changelog`` are shared by every versioned table of a database, so they are created if
missing and otherwise left alone)::

    pip install -e '.[postgresql]'   # or '.[mysql]': the database driver
    python examples/restore.py postgresql+psycopg://user@localhost/mydb
"""

from __future__ import annotations

import datetime as dt
import sys

import pendulum
from sqlalchemy import (
    Connection,
    Engine,
    ForeignKey,
    String,
    create_engine,
    func,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from sqlalchemy_chronicle import (
    Transaction,
    Versioned,
    changelog_of_transaction,
    changes_by,
    configure,
    history,
    restore,
    restore_all,
    use_sqlite_savepoints,
)


class Base(DeclarativeBase):
    pass


class Customer(Versioned, Base):
    __tablename__ = "undo_customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Invoice(Versioned, Base):
    __tablename__ = "undo_invoice"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("undo_customer.id"))
    status: Mapped[str] = mapped_column(String(20))

    lines: Mapped[list[InvoiceLine]] = relationship(
        order_by="InvoiceLine.id", cascade="all, delete-orphan"
    )


class InvoiceLine(Versioned, Base):
    __tablename__ = "undo_invoice_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("undo_invoice.id"))
    description: Mapped[str] = mapped_column(String(100))
    amount_cents: Mapped[int]


MONDAY = pendulum.datetime(2024, 3, 4, 9, tz="UTC")
TUESDAY = MONDAY.add(days=1)


class StoryClock:
    """The times of this story, in place of the database's clock (an application keeps that one)."""

    now = MONDAY

    def __call__(self, connection: Connection) -> dt.datetime:
        return self.now


def connect(url: str) -> Engine:
    engine = create_engine(url)
    # A restore works in a savepoint; on SQLite, savepoints need SQLAlchemy to begin the
    # transactions (a no-op on other databases).
    use_sqlite_savepoints(engine)
    return engine


def create_tables(engine: Engine) -> None:
    own = [table for table in Base.metadata.sorted_tables if table.name.startswith("undo_")]
    Base.metadata.drop_all(engine, tables=own)  # so that the example can run again
    Base.metadata.create_all(engine)


def money(cents: int) -> str:
    return f"{cents / 100:.2f}"


def summary(session: Session, title: str) -> None:
    invoices = session.scalar(select(func.count()).select_from(Invoice))
    lines = session.scalar(select(func.count()).select_from(InvoiceLine))
    total = session.execute(
        select(func.coalesce(func.sum(InvoiceLine.amount_cents), 0))
    ).scalar_one()
    names = ", ".join(session.scalars(select(Customer.name).order_by(Customer.id)))
    print(f"{title}: {invoices} invoices, {lines} lines, total {money(total)}; customers {names}")


def monday(session: Session) -> None:
    session.add_all([Customer(id=1, name="Ada Lovelace"), Customer(id=2, name="Grace Hopper")])
    session.add_all(
        [Invoice(id=1, customer_id=1, status="sent"), Invoice(id=2, customer_id=2, status="sent")]
    )
    session.flush()
    session.add_all(
        [
            InvoiceLine(id=1, invoice_id=1, description="analytical engine", amount_cents=8000),
            InvoiceLine(id=2, invoice_id=1, description="punched cards", amount_cents=300),
            InvoiceLine(id=3, invoice_id=2, description="compiler", amount_cents=4000),
        ]
    )
    session.commit()
    summary(session, "Monday")


def tuesday_morning(session: Session, clock: StoryClock) -> None:
    clock.now = TUESDAY.add(hours=1)  # a script meant for cents multiplies every amount
    session.execute(update(InvoiceLine).values(amount_cents=InvoiceLine.amount_cents * 100))
    session.commit()

    clock.now = TUESDAY.add(hours=2)  # the wrong invoice is deleted, its lines with it
    session.delete(session.get_one(Invoice, 2))
    session.commit()

    clock.now = TUESDAY.add(hours=3)  # a customer's name is mangled
    session.get_one(Customer, 2).name = "G."
    session.commit()
    summary(session, "Tuesday noon")


def tuesday_afternoon(session: Session, clock: StoryClock) -> None:
    clock.now = TUESDAY.add(hours=6)
    before_the_mistakes = TUESDAY  # 09:00, before the first of them

    with changes_by(actor="admin", reason="undo Tuesday morning"):
        # One row, to the version before the mistake.
        grace = session.get_one(Customer, 2)
        *_, previous, _mangled = history(session, grace)
        restore(session, previous)
        print(f"Customer 2 back to version {previous.version}: {grace.name}")

        # A deleted row, with its related rows, to a time.
        invoice = restore(session, Invoice, 2, as_of=before_the_mistakes, include=[Invoice.lines])
        assert invoice is not None  # it existed then
        lines = ", ".join(
            f"{line.description} {money(line.amount_cents)}" for line in invoice.lines
        )
        print(f"Invoice 2 back with its lines: {lines}")

        # A whole table, in set-based SQL: the rows restored above are already right.
        result = restore_all(session, InvoiceLine, as_of=before_the_mistakes)
        print(
            f"Lines put back by restore_all: {result.updated} updated, {result.inserted} "
            f"inserted, {result.deleted} deleted, {result.unchanged} already right"
        )
        session.commit()
    summary(session, "Tuesday evening")


def look_at_the_history(session: Session) -> None:
    print("Versions of line 1:")
    for version in history(session, InvoiceLine, 1):
        restored = f" (version {version.restored_from} again)" if version.restored_from else ""
        amount = money(version[InvoiceLine.amount_cents])
        print(f"  v{version.version} {version.operation:<7} {amount}{restored}")

    fix = session.scalars(select(Transaction).order_by(Transaction.id.desc()).limit(1)).one()
    print(f"The fix, by {fix.actor} ({fix.reason}):")
    entries = sorted(
        session.scalars(changelog_of_transaction(fix.id)),
        key=lambda entry: (entry.table_name, int(entry.row_id)),
    )
    for entry in entries:
        print(f"  {entry.event_type} {entry.table_name} {entry.row_id}")


def main(url: str = "sqlite://") -> None:
    engine = connect(url)
    clock = StoryClock()
    configure(clock=clock)
    try:
        create_tables(engine)
        with Session(engine) as session:
            monday(session)
            tuesday_morning(session, clock)
            tuesday_afternoon(session, clock)
            look_at_the_history(session)
    finally:
        configure(clock=None)
        engine.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:2])
