// The sample browser: tabs, and a text filter and an error-flag filter over the cards.
// Without script every panel is shown, one under the other.
(function () {
  "use strict";
  var tabs = Array.prototype.slice.call(document.querySelectorAll("[data-tab]"));
  var panels = Array.prototype.slice.call(document.querySelectorAll("[data-panel]"));
  var filter = document.getElementById("sample-filter");
  var flaggedOnly = document.getElementById("flagged-only");
  function show(name) {
    tabs.forEach(function (tab) { tab.setAttribute("aria-selected", String(tab.dataset.tab === name)); });
    panels.forEach(function (panel) { panel.hidden = panel.dataset.panel !== name; });
  }
  function applyFilters() {
    var wanted = filter ? filter.value.toLowerCase() : "";
    var flagged = flaggedOnly ? flaggedOnly.checked : false;
    document.querySelectorAll("[data-panel] > article").forEach(function (card) {
      var matches = !wanted || card.textContent.toLowerCase().indexOf(wanted) !== -1;
      card.hidden = !matches || (flagged && card.dataset.flagged !== "yes");
    });
  }
  tabs.forEach(function (tab) { tab.addEventListener("click", function () { show(tab.dataset.tab); }); });
  if (filter) { filter.addEventListener("input", applyFilters); }
  if (flaggedOnly) { flaggedOnly.addEventListener("change", applyFilters); }
  if (tabs.length) { show(tabs[0].dataset.tab); }
}());
