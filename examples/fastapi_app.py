"""A FastAPI application on an ``AsyncSession``: every change attributed, each history served.

The request's session comes from a dependency, and a second dependency, for the endpoints that
write, reads who sends the request from the header ``X-User`` (a real application takes the user
from its authentication; optionally why, from ``X-Reason``) and attributes that session's changes
to them with ``attribute_session()``. The endpoints themselves are ordinary async ORM code; the
past is read through ``sqlalchemy_chronicle.asyncio``: the awaitable ``history()`` and the
time-travel session ``as_of()``.

Endpoints (JSON in, JSON out; writes need ``X-User``):

- ``POST /books`` with ``{"title": ..., "author": ...}``: create a book;
- ``GET /books/{id}``: read it;
- ``PATCH /books/{id}`` with some of ``title``, ``author``: change it;
- ``DELETE /books/{id}``: delete it;
- ``GET /books/{id}/history``: its versions, oldest first, each with who made it and why (also
  for a deleted book);
- ``GET /books/{id}/as-of?at=2025-03-01T09:30:00Z``: the book as it was then.

Run it (FastAPI is in the extra ``examples``) with any ASGI server, on a SQLite file in the
current directory or on the database named by ``CHRONICLE_EXAMPLE_DATABASE`` (an async URL:
``sqlite+aiosqlite://``, ``postgresql+psycopg://``, ``mysql+aiomysql://``)::

    pip install -e '.[examples]' aiosqlite uvicorn
    uvicorn --factory examples.fastapi_app:app_from_environment

and talk to it::

    curl -X POST -H 'X-User: alice' -H 'Content-Type: application/json' \\
         -d '{"title": "Emma", "author": "Austen"}' http://127.0.0.1:8000/books
    curl -X PATCH -H 'X-User: bob' -H 'X-Reason: typo' -H 'Content-Type: application/json' \\
         -d '{"author": "Jane Austen"}' http://127.0.0.1:8000/books/1
    curl http://127.0.0.1:8000/books/1/history

Tests use it through ``create_app(database_url)`` and FastAPI's ``TestClient``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sqlalchemy_chronicle import (
    ChronicleError,
    Transaction,
    Versioned,
    attribute_session,
    use_sqlite_savepoints,
)
from sqlalchemy_chronicle import asyncio as chronicle


class Base(DeclarativeBase):
    pass


class Book(Versioned, Base):
    __tablename__ = "fastapi_book"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(200))


class BookIn(BaseModel):
    title: str
    author: str


class BookPatch(BaseModel):
    title: str | None = None
    author: str | None = None


class BookOut(BaseModel):
    id: int
    title: str
    author: str


class VersionOut(BaseModel):
    version: int
    operation: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    actor: str | None
    reason: str | None
    title: str
    author: str


# The dependencies: a session per request, and for writes the same session, attributed.


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session, closed when the request is done."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as opened:
        yield opened


Reading = Annotated[AsyncSession, Depends(session)]


async def attributed(
    session: Reading,
    x_user: Annotated[str | None, Header()] = None,
    x_reason: Annotated[str | None, Header()] = None,
) -> AsyncSession:
    """The request's session, its changes attributed to the sender (401 without ``X-User``)."""
    if x_user is None:
        raise HTTPException(401, "say who you are in the X-User header")
    attribute_session(session.sync_session, actor=x_user, reason=x_reason)
    return session


Writing = Annotated[AsyncSession, Depends(attributed)]


def create_app(database_url: str) -> FastAPI:
    """The application, on the database at the async ``database_url`` (tables made if missing)."""
    engine = create_async_engine(database_url)
    use_sqlite_savepoints(engine.sync_engine)  # restores and savepoints on SQLite; else a no-op
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(title="Books with history", lifespan=lifespan)
    app.state.sessions = sessions

    @app.exception_handler(ChronicleError)
    async def refused(request: Request, error: ChronicleError) -> JSONResponse:
        """The library's refusals (a naive time, say) are the client's mistake: 400."""
        return JSONResponse({"detail": str(error)}, status_code=400)

    # The endpoints: ordinary async ORM code, no mention of who or why.

    async def existing(session: AsyncSession, book_id: int) -> Book:
        book = await session.get(Book, book_id)
        if book is None:
            raise HTTPException(404, "no such book")
        return book

    @app.post("/books", status_code=201)
    async def create_book(data: BookIn, session: Writing) -> BookOut:
        book = Book(title=data.title, author=data.author)
        session.add(book)
        await session.commit()
        return BookOut(id=book.id, title=book.title, author=book.author)

    @app.get("/books/{book_id}")
    async def read_book(book_id: int, session: Reading) -> BookOut:
        book = await existing(session, book_id)
        return BookOut(id=book.id, title=book.title, author=book.author)

    @app.patch("/books/{book_id}")
    async def change_book(book_id: int, data: BookPatch, session: Writing) -> BookOut:
        book = await existing(session, book_id)
        if data.title is not None:
            book.title = data.title
        if data.author is not None:
            book.author = data.author
        await session.commit()
        return BookOut(id=book.id, title=book.title, author=book.author)

    @app.delete("/books/{book_id}", status_code=204)
    async def delete_book(book_id: int, session: Writing) -> None:
        await session.delete(await existing(session, book_id))
        await session.commit()

    @app.get("/books/{book_id}/history")
    async def book_history(book_id: int, session: Reading) -> list[VersionOut]:
        versions = await chronicle.history(session, Book, book_id)
        if not versions:
            raise HTTPException(404, "no such book, now or ever")
        ids = {version.transaction_id for version in versions}
        written_by = {
            transaction.id: transaction
            for transaction in await session.scalars(
                select(Transaction).where(Transaction.id.in_(ids))
            )
        }
        return [
            VersionOut(
                version=version.version,
                operation=version.operation,
                valid_from=version.valid_from,
                valid_to=version.valid_to,
                actor=written_by[version.transaction_id].actor,
                reason=written_by[version.transaction_id].reason,
                title=version[Book.title],
                author=version[Book.author],
            )
            for version in versions
        ]

    @app.get("/books/{book_id}/as-of")
    async def book_as_of(book_id: int, at: dt.datetime, session: Reading) -> BookOut:
        async with chronicle.as_of(session, at) as past:
            book = await past.get(Book, book_id)
            if book is None:
                raise HTTPException(404, f"no book {book_id} at {at.isoformat()}")
            return BookOut(id=book.id, title=book.title, author=book.author)

    return app


def app_from_environment() -> FastAPI:
    """The application on ``$CHRONICLE_EXAMPLE_DATABASE``, for ``uvicorn --factory``."""
    default = "sqlite+aiosqlite:///fastapi_example.db"
    return create_app(os.environ.get("CHRONICLE_EXAMPLE_DATABASE", default))
