/* Accessibility fixes for markup that the book's Sphinx theme and extensions write.
 *
 * Jupyter Book adds every .js file in _static/ to every page. Each fix below changes only ARIA
 * attributes, never behaviour, and answers a "serious" or "critical" finding of the axe-core scan
 * in tests/test_accessibility.py (the WCAG rule in brackets):
 *
 * - Search buttons (pydata-sphinx-theme): aria-label "Search" hides the visible text
 *   "Search Ctrl+K" from speech-input users [2.5.3 label in name]. The label is dropped, so the
 *   button's name is its visible text.
 * - Colour-mode button (pydata-sphinx-theme): aria-label "Color mode" while the visible icon is
 *   named "Light", "Dark" or "System Settings" [2.5.3]. The label now names both, and follows
 *   the mode when the reader switches it.
 * - "Show code cell source" toggles (myst-nb): aria-label "Toggle hidden content" replaces the
 *   visible text [2.5.3]. The label is dropped, so the name is the visible "Show/Hide ..." text.
 * - Bibliography (docutils): a role="list" whose entries carry the deprecated
 *   role="doc-biblioentry", which assistive technology no longer treats as list items
 *   [1.3.1 info and relationships]. The entries become role="listitem".
 */
(function () {
  "use strict";

  function modeName(button, mode) {
    var icon = button.querySelector('[data-mode="' + mode + '"]');
    var title = icon && (icon.getAttribute("title") || (icon.querySelector("title") || {}).textContent);
    return title || mode;
  }

  function labelModeButtons() {
    var mode = document.documentElement.dataset.mode || "auto";
    document.querySelectorAll(".theme-switch-button").forEach(function (button) {
      button.setAttribute("aria-label", "Color mode: " + modeName(button, mode));
    });
  }

  function fix() {
    document.querySelectorAll("button.search-button__button[aria-label]").forEach(function (button) {
      button.removeAttribute("aria-label");
    });
    document.querySelectorAll('details > summary[aria-label="Toggle hidden content"]').forEach(function (summary) {
      summary.removeAttribute("aria-label");
    });
    document.querySelectorAll('[role="list"] > [role="doc-biblioentry"]').forEach(function (entry) {
      entry.setAttribute("role", "listitem");
    });
    labelModeButtons();
    new MutationObserver(labelModeButtons).observe(document.documentElement,
      { attributes: true, attributeFilter: ["data-mode"] });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fix);
  else fix();
})();
