"""Quickstart: one versioned model, four transactions, and the history they leave.

Run it with an in-memory SQLite database::

    python examples/quickstart.py

or on a database of your own (the example creates, and first drops, only its own two tables,
``quickstart_article`` and ``quickstart_article_history``; ``chronicle_transaction`` is shared by
every versioned table of a database, so it is created if missing and otherwise left alone)::

    pip install -e '.[postgresql]'   # or '.[mysql]': the database driver
    python examples/quickstart.py postgresql+psycopg://user@localhost/mydb
"""

from __future__ import annotations

import datetime as dt
import sys

from sqlalchemy import Engine, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import Transaction, Versioned


class Base(DeclarativeBase):
    pass


class Article(Versioned, Base):
    """Declaring the class is the whole set-up: ``quickstart_article_history`` comes with it."""

    __tablename__ = "quickstart_article"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(String(1000))


ArticleHistory = Article.__history__  # the mapped class of quickstart_article_history


def create_tables(engine: Engine) -> None:
    own = [table for table in Base.metadata.sorted_tables if table.name.startswith("quickstart_")]
    Base.metadata.drop_all(engine, tables=own)  # so that the example can run again
    Base.metadata.create_all(engine)  # quickstart_article, its history, chronicle_transaction


def make_history(engine: Engine) -> int:
    """Four transactions on one article: create, update, delete, create again."""
    with Session(engine) as session:
        article = Article(title="Hello", body="First draft.")
        session.add(article)
        session.commit()  # version 1: insert
        article_id = article.id

        article.title = "Hello, history"
        article.body = "Second draft."
        session.commit()  # version 2: update; version 1 ends where version 2 begins

        article.title = "Hello, history"  # the same value again: no version is written
        session.commit()

        session.delete(article)
        session.commit()  # version 3: the delete marker, holding the last values

        session.add(Article(id=article_id, title="Hello again", body="Back again."))
        session.commit()  # version 4: the same key lives again
    return article_id


ROW = "  {:<9}{:<11}{:<28}{:<28}{:<4}{}"


def show(when: dt.datetime | None) -> str:
    return "(current)" if when is None else when.strftime("%Y-%m-%d %H:%M:%S.%f")


def print_history(engine: Engine, article_id: int) -> None:
    with Session(engine) as session:
        versions = session.scalars(
            select(ArticleHistory)
            .where(ArticleHistory.id == article_id)
            .order_by(ArticleHistory.version)
        ).all()
        print(f"History of article {article_id} ({ArticleHistory.__table__.name}):")
        print(
            ROW.format("version", "operation", "valid_from (UTC)", "valid_to (UTC)", "tx", "values")
        )
        for v in versions:
            values = f"title={v.title!r}, body={v.body!r}"
            valid_from, valid_to = show(v.valid_from), show(v.valid_to)
            print(
                ROW.format(v.version, v.operation, valid_from, valid_to, v.transaction_id, values)
            )
        print()
        print("Transactions that wrote them:")
        ids = sorted({v.transaction_id for v in versions})
        for transaction in session.scalars(
            select(Transaction).where(Transaction.id.in_(ids)).order_by(Transaction.id)
        ):
            print(f"  {transaction.id:<3} at {show(transaction.timestamp)}")


def main(url: str = "sqlite://") -> None:
    engine = create_engine(url)
    try:
        create_tables(engine)
        article_id = make_history(engine)
        print_history(engine, article_id)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:2])
