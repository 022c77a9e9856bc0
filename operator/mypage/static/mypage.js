// MyPage, live: polls the customer's JSON API every 2 seconds (same origin, with the session cookie,
// or the page link's token as a bearer token) and, when a rental changed, fetches this page again
// and swaps in its content, so the whole page (each rental, its contract, the live section and its
// Cancel links) follows the rental as it moves. Without script the page still shows everything as
// of when it was loaded. No inline script, no third party (CSP script-src and connect-src 'self').
(function () {
  "use strict";
  var section = document.getElementById("live");
  if (!section || !window.fetch || !window.DOMParser) { return; }
  var customer = section.getAttribute("data-customer");
  var api = "/api/v1/customers/" + encodeURIComponent(customer) + "/rentals";
  var headers = { Accept: "application/json" };
  var token = new URLSearchParams(window.location.search).get("token");
  if (token) { headers.Authorization = "Bearer " + token; }
  var seen = null;

  function signature(body) {
    return (body.rentals || []).map(function (rental) {
      return [rental.namespace, rental.name, rental.phase, rental.delivery && rental.delivery.phase,
        rental.updatedAt].join("|");
    }).join("\n");
  }

  // Before the first answer is compared with a later one: does the page as loaded show other
  // rentals or phases than the API (a rental applied a moment before the page was rendered)?
  function differs(body) {
    var rentals = body.rentals || [];
    var items = section.querySelectorAll("[data-rental]");
    if (items.length !== rentals.length) { return true; }
    var shown = {};
    Array.prototype.forEach.call(items, function (item) {
      var phase = item.querySelector("[data-phase]");
      shown[item.getAttribute("data-rental")] = phase ? phase.getAttribute("data-phase") : "";
    });
    return rentals.some(function (rental) { return shown[rental.namespace + "/" + rental.name] !== rental.phase; });
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var main = document.querySelector("main");
    var freshMain = fresh.querySelector("main");
    var freshLive = fresh.getElementById("live");
    if (!main || !freshMain || !freshLive) { return; }
    // Everything before the live section is replaced; the live section keeps its element (and its
    // aria-live region, so a screen reader announces the change) and takes the new list.
    while (main.firstChild && main.firstChild !== section) { main.removeChild(main.firstChild); }
    Array.prototype.slice.call(freshMain.childNodes).forEach(function (node) {
      if (node !== freshLive) { main.insertBefore(document.importNode(node, true), section); }
    });
    var region = section.querySelector("[aria-live]");
    var freshRegion = freshLive.querySelector("[aria-live]");
    if (region && freshRegion) { region.innerHTML = freshRegion.innerHTML; }
  }

  function refresh() {
    return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html) { swap(html); } });
  }

  function poll() {
    fetch(api, { credentials: "same-origin", headers: headers, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) { return null; }
        var now = signature(body);
        var changed = seen === null ? differs(body) : now !== seen;
        seen = now;
        return changed ? refresh() : null;
      })
      .catch(function () { /* offline for a moment: try again at the next tick */ })
      .then(function () { window.setTimeout(poll, 2000); });
  }
  poll();
})();
