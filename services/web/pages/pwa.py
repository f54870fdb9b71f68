"""Installable app bits: the manifest and the service worker at the root scope (which makes the offline page)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, send_from_directory, url_for

from services.web.runtime import runtime

blp = Blueprint("pwa", __name__)


@blp.get("/manifest.webmanifest")
def manifest():
    name = runtime().settings.product_name
    icons = [{"src": url_for("static", filename=f"icons/icon-{size}.png"), "sizes": f"{size}x{size}",
              "type": "image/png", "purpose": purpose}
             for size in (192, 512) for purpose in ("any", "maskable")]
    response = jsonify(name=name, short_name=name, start_url="/", scope="/", display="standalone",
                       background_color="#ffffff", theme_color="#1d4ed8", icons=icons)
    response.mimetype = "application/manifest+json"
    return response


@blp.get("/sw.js")
def service_worker():
    """Served from the root so its scope is the whole site."""
    response = send_from_directory(current_app.static_folder, "sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response

