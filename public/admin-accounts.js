// Search as you type on the console's managed-accounts list (views/admin/accounts.eta).
//
// Progressive enhancement only: the search form works without this file (a GET that renders the
// page). With it, typing or picking a status fetches that same page, debounced, and swaps in its
// results region, so the server stays the one place that searches and renders (no JSON, no HTML
// built here). Served from /static under the CSP's script-src 'self' and connect-src 'self'.
(function () {
  'use strict';
  var form = document.getElementById('account-search');
  var results = document.getElementById('account-results');
  if (!form || !results || !window.fetch || !window.DOMParser || !window.URLSearchParams || !window.FormData) return;
  var DELAY = 250;
  var timer = null;
  var controller = null;
  var last = null;

  function addressFor() {
    var params = new URLSearchParams(new FormData(form));
    // Empty fields are left out, as the server's own links do.
    var kept = new URLSearchParams();
    params.forEach(function (value, key) { if (value) kept.append(key, value); });
    var query = kept.toString();
    return form.getAttribute('action') + (query ? '?' + query : '');
  }

  function update() {
    var address = addressFor();
    if (address === last) return;
    last = address;
    if (controller) controller.abort();
    controller = window.AbortController ? new AbortController() : null;
    results.setAttribute('aria-busy', 'true');
    fetch(address, { credentials: 'same-origin', headers: { Accept: 'text/html' }, signal: controller ? controller.signal : undefined })
      .then(function (response) {
        if (!response.ok && response.status !== 400) throw new Error('status ' + response.status);
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, 'text/html');
        var fresh = page.getElementById('account-results');
        if (!fresh) throw new Error('no results in the page');
        results.innerHTML = fresh.innerHTML;
        results.removeAttribute('aria-busy');
        if (window.history && history.replaceState) history.replaceState(null, '', address);
      })
      .catch(function (err) {
        if (err && err.name === 'AbortError') return;
        // Anything unexpected (signed out, offline): fall back to the plain form submission.
        results.removeAttribute('aria-busy');
        form.submit();
      });
  }

  function soon() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(update, DELAY);
  }

  form.addEventListener('input', function (event) {
    if (event.target && event.target.name === 'q') soon();
  });
  form.addEventListener('change', function (event) {
    if (event.target && event.target.name === 'status') update();
  });
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (timer) clearTimeout(timer);
    last = null;
    update();
  });
})();
