// The console's own script: niceties over pages that work without it (every page is plain
// HTML forms). No library, no build step.
"use strict";

(function () {
  const lang = document.documentElement.lang === "fr" ? "fr" : "en";
  const words = {
    fr: { changed: (n) => `${n} case(s) modifiée(s)`, copied: "Copiée" },
    en: { changed: (n) => `${n} cell(s) changed`, copied: "Copied" },
  }[lang];

  // A search box filters the rows of its table as one types (the server search still works).
  for (const box of document.querySelectorAll("input[data-filter]")) {
    const table = document.querySelector(box.dataset.filter);
    if (!table) continue;
    const filter = () => {
      const wanted = box.value.trim().toLowerCase();
      for (const row of table.tBodies[0].rows) {
        row.classList.toggle("hidden-by-filter", !!wanted && !row.textContent.toLowerCase().includes(wanted));
      }
    };
    box.addEventListener("input", filter);
    filter();
  }

  // The targets grid: cells edited are marked, and counted; Enter moves down a column.
  const grid = document.getElementById("targets-grid");
  if (grid) {
    const count = document.getElementById("changed-count");
    const cells = [...grid.querySelectorAll("input[name^='cell.']")];
    const mark = () => {
      let changed = 0;
      for (const cell of cells) {
        const differs = cell.value.trim() !== (cell.dataset.was || "");
        cell.classList.toggle("changed", differs);
        if (differs) changed += 1;
      }
      if (count) count.textContent = changed ? words.changed(changed) : "";
    };
    grid.addEventListener("input", mark);
    grid.addEventListener("keydown", (event) => {
      const cell = event.target;
      if (event.key !== "Enter" || !cells.includes(cell) || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      const column = cell.closest("td").cellIndex;
      const next = cell.closest("tr").nextElementSibling;
      const below = next && next.cells[column] && next.cells[column].querySelector("input[name^='cell.']");
      if (below) below.focus();
    });
    mark();
  }

  // The alert form shows only the fields its trigger takes.
  const trigger = document.getElementById("f-trigger") || document.getElementById("al-trigger");
  if (trigger) {
    const show = () => {
      for (const part of document.querySelectorAll("[data-kinds]")) {
        part.hidden = !part.dataset.kinds.split(" ").includes(trigger.value);
      }
    };
    trigger.addEventListener("change", show);
    show();
  }

  // The wallboard builder: the URL as one chooses, the read key put in by the browser only,
  // and the preview of that URL.
  const form = document.getElementById("wall-form");
  if (form) {
    const out = document.getElementById("wall-url");
    const open = document.getElementById("open-url");
    const frame = document.getElementById("wall-preview");
    const help = document.getElementById("preview-help");
    const key = document.getElementById("w-key");
    const copy = document.getElementById("copy-url");
    let shown = "";
    const build = () => {
      const data = new FormData(form);
      const query = new URLSearchParams();
      query.set("key", key.value.trim() || "<read key>");
      query.set("metrics", data.getAll("metrics").join(",") || "calls_total");
      query.set("windows", data.getAll("windows").join(",") || "today");
      if (data.get("team")) query.set("team", data.get("team"));
      query.set("rotate", data.get("rotate") || "20");
      query.set("theme", data.get("theme") || "dark");
      query.set("lang", data.get("lang") || lang);
      if (data.get("pace")) query.set("show", "pace");
      const path = "/wallboard?" + query.toString().replace(/%2C/g, ",").replace(/%3C/g, "<").replace(/%3E/g, ">");
      const url = new URL(path, window.location.origin).href;
      out.textContent = url;
      open.href = path;
      if (key.value.trim() && path !== shown) {
        shown = path;
        frame.src = path;
        help.hidden = true;
      }
      if (!key.value.trim()) {
        help.hidden = false;
      }
    };
    form.addEventListener("input", build);
    form.addEventListener("change", build);
    copy.hidden = !navigator.clipboard;
    copy.addEventListener("click", async () => {
      await navigator.clipboard.writeText(out.textContent);
      copy.textContent = words.copied;
    });
    build();
  }
})();
