"""Migrations as a user runs them: the real ``alembic`` command line, in a project of its own.

``alembic init``, ``target_metadata`` set in the ``env.py`` it writes and nothing else, then
``alembic revision --autogenerate`` and ``alembic upgrade head`` for every step of a schema's
life: versioning two classes, adding a column, dropping one, renaming one. After each step
``alembic check`` is clean, and the history written before it still reads through the library.
The migration files are rendered and run, never only compared.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, create_engine, text

ALEMBIC = Path(sys.executable).with_name("alembic")

MODELS = """
import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Enum, ForeignKey, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sqlalchemy_chronicle import Versioned


class Base(DeclarativeBase):
    pass


class Status(enum.Enum):
    draft = "draft"
    live = "live"


class MigAuthor({author_bases}):
    __tablename__ = "mig_author"

    id: Mapped[int] = mapped_column(primary_key=True)
    {author}: Mapped[str] = mapped_column(String(50))


class MigBook(Versioned, Base):
    __tablename__ = "mig_book"
    __versioned__ = {book_options}

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("mig_author.id"))
    status: Mapped[Status] = mapped_column(Enum(Status, name="mig_status"))
    data: Mapped[Any] = mapped_column(JSON, nullable=True)
{price}    published: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
{extra}
"""


class Project:
    """A directory made by ``alembic init``, with the application's models beside it."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.run("init", "migrations")
        ini = root / "alembic.ini"
        ini.write_text(
            ini.read_text().replace("driver://user:pass@localhost/dbname", url.replace("%", "%%"))
        )
        env = root / "migrations" / "env.py"
        env.write_text(
            env.read_text().replace(
                "target_metadata = None",
                "import app_models\ntarget_metadata = app_models.Base.metadata",
            )
        )

    def models(
        self,
        extra: str = "",
        price: bool = True,
        author: str = "name",
        excluded: tuple[str, ...] = (),
        author_versioned: bool = True,
    ) -> None:
        columns = (
            "    price: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))\n" if price else ""
        )
        text = MODELS.format(
            extra=extra,
            price=columns,
            author=author,
            book_options={"exclude": list(excluded)},
            author_bases="Versioned, Base" if author_versioned else "Base",
        )
        (self.root / "app_models.py").write_text(text)

    def run(self, *arguments: str) -> str:
        result = subprocess.run(
            [str(ALEMBIC), *arguments],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "PYTHONPATH": str(self.root)},
        )
        assert result.returncode == 0, f"alembic {' '.join(arguments)}:\n{result.stderr}"
        return result.stdout + result.stderr

    def revision(self, message: str, autogenerate: bool = True) -> Path:
        self.run("revision", *(["--autogenerate"] if autogenerate else []), "-m", message)
        (path,) = (self.root / "migrations" / "versions").glob(f"*_{message}.py")
        return path

    def python(self, code: str) -> str:
        """Run ``code`` as the application would, with its models imported."""
        script = "import app_models\nfrom sqlalchemy import create_engine\n"
        script += f"engine = create_engine({self.url!r})\n" + textwrap.dedent(code)
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture
def project(engine: Engine, tmp_path: Path) -> Iterator[Project]:
    """A new project on an empty database of its own (autogenerate compares whole databases)."""
    if engine.dialect.name == "sqlite":
        yield Project(tmp_path, f"sqlite:///{tmp_path / 'app.db'}")
        return
    url = engine.url.set(database=f"{engine.url.database}_alembic")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name == "postgresql":
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{url.database}"'))
        else:
            connection.execute(text(f"CREATE DATABASE IF NOT EXISTS `{url.database}`"))
    own = create_engine(url)
    empty(own)
    try:
        yield Project(tmp_path, url.render_as_string(hide_password=False))
    finally:
        empty(own)
        own.dispose()


def empty(engine: Engine) -> None:
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for (name,) in connection.execute(
                text(
                    "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                    "WHERE n.nspname = 'public' AND t.typtype = 'e'"
                )
            ):
                connection.execute(text(f'DROP TYPE "{name}"'))


def test_generated_migrations_run_unedited_and_keep_history(project: Project) -> None:
    project.models()
    first = project.revision("version_two_classes")
    assert "sqlalchemy_chronicle" in first.read_text()
    project.run("upgrade", "head")
    project.run("check")
    project.python(
        """
        from decimal import Decimal
        from sqlalchemy.orm import Session
        with Session(engine) as session:
            session.add(app_models.MigAuthor(id=1, name="Ann"))
            session.add(app_models.MigBook(id=1, author_id=1, status=app_models.Status.draft,
                                           price=Decimal("9.99"), data={"a": 1}))
            session.commit()
            book = session.get(app_models.MigBook, 1)
            book.price = Decimal("12.50")
            session.commit()
        """
    )

    project.models("    subtitle: Mapped[str | None] = mapped_column(String(80))\n")
    added = project.revision("add_subtitle")
    assert "mig_book_history" in added.read_text()
    project.run("upgrade", "head")
    project.run("check")
    out = project.python(
        """
        from sqlalchemy.orm import Session
        from sqlalchemy_chronicle import history
        with Session(engine) as session:
            for v in history(session, app_models.MigBook, 1):
                print(v.version, v.price, v.subtitle)
        """
    )
    assert out.split("\n")[:2] == ["1 9.99 None", "2 12.50 None"]

    # Dropping a column keeps what history recorded of it.
    project.models("    subtitle: Mapped[str | None] = mapped_column(String(80))\n", price=False)
    dropped = project.revision("drop_price").read_text()
    assert "op.drop_column('mig_book', 'price')" in dropped
    assert "op.retire_history_column('mig_book_history', 'price')" in dropped
    assert "op.unretire_history_column('mig_book_history', 'price'" in dropped
    project.run("upgrade", "head")
    project.run("check")
    out = project.python(
        """
        from sqlalchemy.orm import Session
        from sqlalchemy_chronicle import changes, history
        with Session(engine) as session:
            first, second = history(session, app_models.MigBook, 1)
            print(float(first.retired_values["price"]), float(second.retired_values["price"]))
            print(sorted(changes(first, second)))
        """
    )
    assert out.split("\n")[:2] == ["9.99 12.5", "['price']"]

    # The downgrade puts the column and its values back; the upgrade retires them again.
    project.run("downgrade", "-1")
    out = project.python(
        """
        from sqlalchemy import text
        with engine.connect() as connection:
            query = "SELECT price, retired_values FROM mig_book_history ORDER BY version"
            print([(float(p), r) for p, r in connection.execute(text(query))])
        """
    )
    assert out.strip() == "[(9.99, None), (12.5, None)]"
    project.run("upgrade", "head")
    project.run("check")

    # Renaming a column: the documented recipe, written by hand as Alembic requires.
    project.models(
        "    subtitle: Mapped[str | None] = mapped_column(String(80))\n",
        price=False,
        author="full_name",
    )
    recipe = project.revision("rename_name", autogenerate=False)
    recipe.write_text(
        recipe.read_text().replace(
            '    """Upgrade schema."""\n    pass',
            '    """Upgrade schema."""\n'
            "    for table, nullable in (('mig_author', False), ('mig_author_history', True)):\n"
            "        op.alter_column(table, 'name', new_column_name='full_name',\n"
            "                        existing_type=sa.String(50), existing_nullable=nullable)",
        )
    )
    project.run("upgrade", "head")
    project.run("check")
    out = project.python(
        """
        from sqlalchemy.orm import Session
        from sqlalchemy_chronicle import history
        with Session(engine) as session:
            print([v.full_name for v in history(session, app_models.MigAuthor, 1)])
        """
    )
    assert out.strip() == "['Ann']"

    # Excluding a column later retires it in history too; the live column stays.
    subtitle = "    subtitle: Mapped[str | None] = mapped_column(String(80))\n"
    project.models(subtitle, price=False, author="full_name", excluded=("data",))
    excluded = project.revision("exclude_data").read_text()
    assert "op.retire_history_column('mig_book_history', 'data')" in excluded
    assert "drop_column('mig_book'," not in excluded
    project.run("upgrade", "head")
    project.run("check")

    # A class no longer versioned: its history table is kept, with a warning, never dropped.
    project.models(
        subtitle, price=False, author="full_name", excluded=("data",), author_versioned=False
    )
    output = project.run("revision", "--autogenerate", "-m", "unversion_author")
    assert "kept table mig_author_history" in output
    (unversioned,) = (project.root / "migrations" / "versions").glob("*_unversion_author.py")
    assert "mig_author_history" not in unversioned.read_text()
    project.run("upgrade", "head")
    project.run("check")
