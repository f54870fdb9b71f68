// Threshold's service worker: static assets from a cache, pages always from the network.
// No HTML is ever cached; a navigation without a network gets the offline page built here.
"use strict";
var CACHE = "threshold-static-v1";
var ASSETS = ["/static/vendor/pico/pico.min.css", "/static/theme.css", "/static/app.css", "/static/app.js",
              "/static/logo.svg"];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(ASSETS); }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (key) { return key !== CACHE; }).map(function (key) { return caches.delete(key); }));
  }).then(function () { return self.clients.claim(); }));
});

var OFFLINE_PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
  '<meta name="viewport" content="width=device-width, initial-scale=1"><title>You are offline</title>' +
  '<link rel="stylesheet" href="/static/vendor/pico/pico.min.css"><link rel="stylesheet" href="/static/theme.css">' +
  '<link rel="stylesheet" href="/static/app.css"></head><body><main class="container narrow">' +
  '<h1>You are offline</h1><p>This page needs a connection. Check your network, then reload.</p>' +
  '</main></body></html>';

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(function () {
      return new Response(OFFLINE_PAGE, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
    }));
    return;
  }
  if (url.origin === self.location.origin && url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (hit) {
      return hit || fetch(request).then(function (response) {
        if (response.ok) {
          var copy = response.clone();
          caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
        }
        return response;
      });
    }));
  }
});
