"""The history viewer in a real browser: headless Chromium clicking through both example apps.

Each example application (``examples/sqladmin_app.py`` under uvicorn,
``examples/flask_admin_app.py`` under werkzeug) is served from a thread of the test process on
each database of the run. Playwright drives Debian's Chromium (``/usr/bin/chromium``, from the
``chromium`` package that ``.ci/run`` installs; no browser is downloaded) through the change log
and its filters, a row's timeline, a diff, the date-time picker of the as-of page, a restore that
conflicts and one that succeeds, and a page asked for with bad input.

With ``CHRONICLE_VIEWER_SCREENSHOTS`` set to a directory, the sqladmin run on SQLite saves the
screenshots that ``docs/viewer.md`` shows there.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import Engine

from .viewer_apps import KINDS, ExampleApp, example_app

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("CHRONICLE_VIEWER_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver packages "
            "(.ci/run does)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Served:
    """An example application served over HTTP from a thread of this process."""

    def __init__(self, example: ExampleApp) -> None:
        self.example = example
        if example.kind == "sqladmin":
            import uvicorn

            port = _free_port()
            config = uvicorn.Config(example.app, host="127.0.0.1", port=port, log_level="error")
            self.uvicorn = uvicorn.Server(config)
            self.thread = threading.Thread(target=self.uvicorn.run, daemon=True)
            self.thread.start()
            deadline = time.monotonic() + 20
            while not self.uvicorn.started:
                if time.monotonic() > deadline or not self.thread.is_alive():
                    raise RuntimeError("uvicorn did not start")
                time.sleep(0.02)
        else:
            from werkzeug.serving import make_server

            self.werkzeug = make_server("127.0.0.1", 0, example.app, threaded=True)
            port = self.werkzeug.server_port
            self.thread = threading.Thread(target=self.werkzeug.serve_forever, daemon=True)
            self.thread.start()
        self.base = f"http://127.0.0.1:{port}"

    def url(self, name: str, model: str | None = None, **query: Any) -> str:
        return self.base + self.example.url(name, model, **query)

    def stop(self) -> None:
        if self.example.kind == "sqladmin":
            self.uvicorn.should_exit = True
        else:
            self.werkzeug.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(params=KINDS)
def served(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Served]:
    with example_app(request.param, engine) as example:
        server = Served(example)
        try:
            yield server
        finally:
            server.stop()


def _shoot(page: Page, served: Served, name: str) -> None:
    if SCREENSHOTS and served.example.kind == "sqladmin" and served.example.engine.name == "sqlite":
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"viewer-{name}.png"), full_page=True)


def _versions(page: Page) -> list[str]:
    return page.locator("tr.version").evaluate_all(
        "rows => rows.map(r => r.dataset.version + ' ' + r.querySelector('.op').textContent)"
    )


def test_clicking_through_the_history(browser: Browser, served: Served) -> None:
    book = served.example.book
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        # The index, then the books' change log, filtered by actor and by operation.
        page.goto(served.url("index"))
        page.locator("#chronicle-index a", has_text="Book").click()
        expect(page.locator("tr.entry")).to_have_count(8)
        _shoot(page, served, "changelog")
        page.fill("#chronicle-filters input[name=actor]", "bob")
        page.click("#chronicle-filters button[type=submit]")
        expect(page.locator("tr.entry")).to_have_count(3)
        page.select_option("#chronicle-filters select[name=operation]", "DELETE")
        page.click("#chronicle-filters button[type=submit]")
        expect(page.locator("tr.entry")).to_have_count(1)
        expect(page.locator("tr.entry td.op")).to_have_text("DELETE")
        page.fill("#chronicle-filters input[name=since]", "2999-01-01T00:00")
        page.click("#chronicle-filters button[type=submit]")
        expect(page.locator("#chronicle-changelog")).to_contain_text("No changes match.")

        # A row's timeline, from the change log's link.
        page.goto(served.url("changelog", book))
        page.locator("tr.entry a", has_text="1").first.click()
        expect(page.locator("tr.version")).to_have_count(4)
        assert _versions(page) == ["4 update", "3 update", "2 update", "1 insert"]
        expect(page.locator("tr.version[data-version='2'] td.fields")).to_have_text("title")
        _shoot(page, served, "timeline")

        # The diff of versions 1 and 2: only the title is highlighted.
        page.locator("tr.version[data-version='2'] a.diff").click()
        expect(page.locator("tr.field.changed")).to_have_count(1)
        expect(page.locator("tr.field.changed th")).to_have_text("title")
        expect(page.locator("tr.field.changed td.new")).to_have_text("The Dispossessed")
        highlighted = page.locator("tr.field.changed td.new").evaluate(
            "cell => getComputedStyle(cell).backgroundColor"
        )
        plain = page.locator("tr.field:not(.changed) td.new").first.evaluate(
            "cell => getComputedStyle(cell).backgroundColor"
        )
        assert highlighted != plain
        page.go_back()
        page.fill("#chronicle-diff-form input[name=a]", "1")
        page.fill("#chronicle-diff-form input[name=b]", "4")
        page.click("#chronicle-diff-form button[type=submit]")
        expect(page.locator("tr.field.changed th")).to_have_text(["title", "isbn", "price"])
        _shoot(page, served, "diff")

        # As of a time: the version's own link, then the date-time picker.
        page.goto(served.url("timeline", book, key=1))
        page.locator("tr.version[data-version='3'] a.as-of").click()
        expect(page.locator("#chronicle-as-of")).to_contain_text("Version 3 (update by alice)")
        expect(page.locator("tr[data-field=price] td")).to_have_text("12.50")
        _shoot(page, served, "as-of")
        page.fill("#chronicle-as-of-form input[name=when]", "2000-01-01T00:00")
        page.click("#chronicle-as-of-form button[type=submit]")
        expect(page.locator(".message")).to_contain_text("did not exist at 2000-01-01")
        page.fill("#chronicle-as-of-form input[name=when]", "2999-12-31T23:59:59.999")
        page.click("#chronicle-as-of-form button[type=submit]")
        expect(page.locator("tr[data-field=isbn] td")).to_have_text("978-0060512750")

        # A restore that would break the unique ISBN: the conflict is shown, nothing changes.
        page.goto(served.url("timeline", book, key=1))
        page.locator("tr.version[data-version='1'] a.restore").click()
        expect(page.locator("tr.field.changed th")).to_have_text(["title", "isbn", "price"])
        _shoot(page, served, "restore")
        page.click("#chronicle-restore-form button[type=submit]")
        expect(page.locator(".message")).to_contain_text("would break the unique constraint")
        page.goto(served.url("timeline", book, key=1))
        expect(page.locator("tr.version")).to_have_count(4)

        # The deleted book comes back.
        page.goto(served.url("timeline", book, key=3))
        assert _versions(page) == ["2 delete", "1 insert"]
        page.locator("tr.version[data-version='1'] a.restore").click()
        expect(page.locator("#chronicle-restore")).to_contain_text("inserts it again")
        page.click("#chronicle-restore-form button[type=submit]")
        expect(page.locator(".success")).to_have_text("Version 1 was restored as version 3.")
        page.goto(served.url("timeline", book, key=3))
        assert _versions(page) == ["3 restore of v1", "2 delete", "1 insert"]

        # Bad input: a message, not a stack trace.
        response = page.goto(served.url("timeline", book, key="no-such-key"))
        assert response is not None and response.status == 400
        expect(page.locator(".message")).to_contain_text("takes an integer")
    finally:
        context.close()
