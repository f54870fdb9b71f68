"""/docs works offline: the vendored Swagger UI (shared/static/swagger-ui-dist) renders the service's
operations in headless Chromium with every request that is not to loopback refused, under the page's own
Content-Security-Policy (no 'unsafe-inline' script)."""
from __future__ import annotations

from urllib.parse import urlsplit


def test_docs_renders_the_operations_with_no_network(identity_app, live_server, browser):
    server = live_server(identity_app)
    page = browser.new_page()  # the session's Chromium (tests/conftest.py)
    refused, problems = [], []

    def loopback_only(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", loopback_only)
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    response = page.goto(f"{server.url}/docs")
    assert response.status == 200
    page.wait_for_selector(".opblock", timeout=30_000)
    summaries = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/v1/me" in [text.replace("\u200b", "") for text in summaries], summaries
    assert refused == [], refused
    assert not [text for text in problems if "Content Security Policy" in text or "Refused" in text], problems
