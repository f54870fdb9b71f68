"""The installable app: manifest, a service worker at the root scope that caches only static assets,
and the offline page it shows when a navigation finds no network."""
from __future__ import annotations

import requests
from playwright.sync_api import expect


def test_the_manifest_describes_an_installable_app(stack):
    response = requests.get(stack.web + "/manifest.webmanifest", timeout=30)
    assert response.headers["Content-Type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["name"] and manifest["display"] == "standalone" and manifest["start_url"] == "/"
    assert manifest["theme_color"]
    sizes = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        assert requests.get(stack.web + icon["src"], timeout=30).headers["Content-Type"] == "image/png"


def test_offline_a_navigation_shows_the_offline_page_and_no_html_is_cached(stack, new_page):
    page = new_page(service_workers="allow")
    page.goto(stack.web + "/sign-in")
    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == stack.web + "/"
    page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    cdp = page.context.new_cdp_session(page)
    errors = {e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]}
    assert errors <= {"in-incognito"}, errors  # every Playwright context is incognito; nothing else stands in the way

    page.context.set_offline(True)
    page.goto(stack.web + "/sign-up")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are offline")
    cached = page.evaluate("""async () => {
        const urls = [];
        for (const name of await caches.keys()) {
            for (const request of await (await caches.open(name)).keys()) { urls.push(new URL(request.url).pathname); }
        }
        return urls;
    }""")
    assert cached and all(path.startswith("/static/") for path in cached), cached
    page.context.set_offline(False)
