"""The little history the two admin examples start with, so that their viewers have one to show.

``sqladmin_app.py`` and ``flask_admin_app.py`` declare the same two classes, authors and books,
on tables of their own; :func:`seed_library` fills either pair the same way: books added,
edited by two people, one deleted, and the ISBN of a book's first edition given to another
(which makes restoring that edition a conflict, to see how the viewer shows one).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import changes_by


def seed_library(session: Session, author: type[Any], book: type[Any]) -> None:
    """A little history: books added, edited by two people, one deleted, one ISBN reused.

    ``author`` and ``book`` are the example's two classes; nothing is written when authors
    are there already.
    """
    if session.scalar(select(func.count()).select_from(author)):
        return
    with changes_by(actor="alice", reason="catalogue import"):
        le_guin = author(id=1, name="Ursula K. Le Guin")
        pratchett = author(id=2, name="Terry Pratchett")
        session.add_all([le_guin, pratchett])
        session.flush()
        session.add_all(
            [
                book(id=1, title="The Dispossesed", isbn="978-0061054884", price=9.99, author_id=1),
                book(id=2, title="Small Gods", isbn="978-0552152976", price=8.99, author_id=2),
                book(id=3, title="Mort", isbn="978-0552131063", price=7.99, author_id=2),
            ]
        )
        session.commit()
    with changes_by(actor="bob", reason="typo in the title"):
        dispossessed = session.get(book, 1)
        assert dispossessed is not None
        dispossessed.title = "The Dispossessed"
        session.commit()
    with changes_by(actor="alice", reason="price change"):
        dispossessed.price = 12.50
        session.commit()
    with changes_by(actor="bob", reason="new edition"):
        dispossessed.isbn = "978-0060512750"
        session.commit()
    with changes_by(actor="bob", reason="withdrawn"):
        mort = session.get(book, 3)
        session.delete(mort)
        session.commit()
    with changes_by(actor="alice", reason="the old edition's ISBN went to another book"):
        session.add(
            book(
                id=4,
                title="The Left Hand of Darkness",
                isbn="978-0061054884",
                price=10.00,
                author_id=1,
            )
        )
        session.commit()
