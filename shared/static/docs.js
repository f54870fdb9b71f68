// Starts Swagger UI on /docs. A file of its own, not an inline script, so the page's
// Content-Security-Policy can be script-src 'self' (shared/service_app.py, DOCS_CSP).
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.specUrl, dom_id: "#swagger-ui", deepLinking: true });
});
