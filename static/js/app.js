// Small progressive enhancements; every page works without them.
document.addEventListener("change", (e) => {
  if (e.target.matches("[data-autosubmit]")) e.target.form.submit();
});
document.addEventListener("click", (e) => {
  const btn = e.target.closest("[data-copy]");
  if (!btn) return;
  navigator.clipboard?.writeText(btn.getAttribute("data-copy")).then(() => {
    btn.textContent = btn.getAttribute("data-copied") || "✓";
  });
});
// Filters folded for phones stay open on wide screens.
if (window.matchMedia("(min-width: 601px)").matches) {
  document.querySelectorAll("details[data-open-wide]").forEach((d) => { d.open = true; });
}
