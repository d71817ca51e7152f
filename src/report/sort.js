// Click (or Enter on) a header of a table.sortable to sort its rows by that column, again to
// reverse. Numbers sort as numbers, other text naturally. Without script the server's order stays.
for (const t of document.querySelectorAll("table.sortable")) {
  const head = t.tHead && t.tHead.rows[0], body = t.tBodies[0];
  if (!head || !body) continue;
  const cmp = new Intl.Collator(undefined, { numeric: true }).compare;
  [...head.cells].forEach((th, i) => {
    const sort = () => {
      const up = th.getAttribute("aria-sort") !== "ascending";
      for (const h of head.cells) h.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      const key = (r) => { const c = r.cells[i]; return c ? (c.dataset.sort || c.textContent).trim() : ""; };
      const rows = [...body.rows].map((r) => [key(r), r]);
      rows.sort(([x], [y]) => {
        const n = x !== "" && y !== "" && !isNaN(x) && !isNaN(y) ? x - y : cmp(x, y);
        return up ? n : -n;
      });
      body.append(...rows.map(([, r]) => r));
    };
    th.tabIndex = 0;
    th.style.cursor = "pointer";
    th.title = "Sort by this column";
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
  });
}
