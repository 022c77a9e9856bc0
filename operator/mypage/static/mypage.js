// MyPage, live: polls the customer's JSON API every 2 seconds (same origin, with the session cookie)
// and updates the phases in the "Live status" section. Without script the page still shows
// everything as of when it was loaded; this only spares the reload. No inline script, no third party.
(function () {
  "use strict";
  var section = document.getElementById("live");
  if (!section || !window.fetch) { return; }
  var customer = section.getAttribute("data-customer");
  var words = {};
  try { words = JSON.parse(section.getAttribute("data-phases") || "{}"); } catch (e) { words = {}; }
  var url = "/api/v1/customers/" + encodeURIComponent(customer) + "/rentals";
  var cancellable = { Pending: 1, AwaitingPayment: 1, PaymentDeferred: 1, Confirmed: 1, PastDue: 1 };

  function text(key, fallback) { return Object.prototype.hasOwnProperty.call(words, key) ? words[key] : fallback; }

  function update(body) {
    var known = {};
    (body.rentals || []).forEach(function (rental) { known[rental.namespace + "/" + rental.name] = rental; });
    var items = section.querySelectorAll("[data-rental]");
    var unseen = false;
    Object.keys(known).forEach(function (key) {
      if (!section.querySelector('[data-rental="' + key.replace(/["\\]/g, "") + '"]')) { unseen = true; }
    });
    Array.prototype.forEach.call(items, function (item) {
      var rental = known[item.getAttribute("data-rental")];
      if (!rental) { return; }
      var phase = item.querySelector("[data-phase]");
      if (phase && phase.getAttribute("data-phase") !== rental.phase) {
        phase.setAttribute("data-phase", rental.phase);
        phase.textContent = text("phase_" + rental.phase, rental.phase);
      }
      var delivery = item.querySelector("[data-delivery]");
      var shipped = rental.delivery && rental.delivery.phase;
      var shown = shipped ? text("delivery_" + shipped, shipped) : text("delivery_none", "");
      if (delivery && delivery.textContent !== shown) { delivery.textContent = shown; }
      var link = item.querySelector("[data-cancel]");
      if (link && !cancellable[rental.phase]) { link.parentNode.removeChild(link); }
    });
    // A rental the page does not list yet (applied a moment before the projection saw it): reload once.
    if (unseen && !sessionStorage.getItem("mypage-reloaded")) {
      sessionStorage.setItem("mypage-reloaded", "1");
      window.location.reload();
    } else if (!unseen) {
      sessionStorage.removeItem("mypage-reloaded");
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) { if (body) { update(body); } })
      .catch(function () { /* offline for a moment: try again at the next tick */ })
      .then(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 2000);
})();
