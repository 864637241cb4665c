// SalesPulse wallboard: rotates through leaderboards, live through the SSE stream.
// Configured by its URL: ?key=<read key>&metrics=calls_total,revenue&windows=today,this_week
//   &team=<id>&rotate=<seconds>&theme=dark|light&limit=<rows>
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const key = params.get("key") || "";
  const metrics = (params.get("metrics") || "calls_total,deals_won,revenue").split(",");
  const windows = (params.get("windows") || "today").split(",");
  const team = params.get("team");
  const rotate = Math.max(5, Number(params.get("rotate") || 30)) * 1000;
  const limit = Math.min(50, Number(params.get("limit") || 10));
  document.documentElement.dataset.theme = params.get("theme") === "light" ? "light" : "dark";

  const boards = metrics.flatMap((m) => windows.map((w) => ({ metric: m, window: w })));
  const labels = { today: "today", yesterday: "yesterday", this_week: "this week",
                   this_month: "this month", last_7d: "last 7 days", last_24h: "last 24 h" };
  const $ = (id) => document.getElementById(id);
  let current = 0, source = null, catalogue = {}, wonBefore = null, retry = 1000;
  // The stream says when it cannot refresh its board (event "status"): until it says it can
  // again, the board shown may be old, so the screen must not claim to be live.
  let stale = null;  // why the stream cannot refresh its board; null while it can

  function showStatus() {
    $("status").textContent = stale === null ? "live" : "reconnecting…";
    $("status").title = stale || "";
  }

  function query(extra) {
    const q = new URLSearchParams({ key, ...extra });
    if (team) q.set("team", team);
    return q.toString();
  }

  function format(value, metric) {
    if (value === null || value === undefined) return "–";
    const unit = (catalogue[metric] || {}).unit;
    if (unit === "ratio") return (value * 100).toFixed(1) + " %";
    if (unit === "currency") return Math.round(value).toLocaleString() + " €";
    if (unit === "seconds") return Math.round(value / 60) + " min";
    return Number(value).toLocaleString();
  }

  function title(metric) {
    return metric.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  }

  function render(board) {
    const name = `${title(board.metric)} · ${labels[board.window] || board.window}`;
    $("title").textContent = name;
    $("caption").textContent = name;
    $("metric-head").textContent = title(board.metric);
    const rows = board.rows.slice(0, limit).map((row) => {
      const tr = document.createElement("tr");
      const move = row.movement > 0 ? ["▲", "up", `up ${row.movement}`]
        : row.movement < 0 ? ["▼", "down", `down ${-row.movement}`] : ["●", "same", "no change"];
      const cells = [
        [row.rank === null ? "–" : row.rank, "rank"],
        [move[0], "move " + move[1], move[2]],
        [row.name, "name"],
        [row.team_id || "", "team"],
        [format(row.value, board.metric), "num"],
      ];
      for (const [text, cls, label] of cells) {
        const td = document.createElement("td");
        td.className = cls;
        td.textContent = text;
        if (label) td.setAttribute("aria-label", label);
        tr.appendChild(td);
      }
      return tr;
    });
    $("rows").replaceChildren(...rows);
  }

  function show(index) {
    current = index % boards.length;
    const board = boards[current];
    if (source) source.close();
    source = new EventSource(
      `/v1/stream/leaderboards/${board.metric}?${query({ window: board.window, limit })}`);
    stale = null;
    source.addEventListener("status", (e) => {
      const status = JSON.parse(e.data);
      stale = status.live ? null : status.reason || "not live";
      showStatus();
    });
    source.addEventListener("leaderboard", (e) => {
      retry = 1000;
      showStatus();
      render(JSON.parse(e.data));
    });
    source.onerror = () => {  // reconnect with a growing delay; EventSource alone may give up
      $("status").textContent = "reconnecting…";
      source.close();
      setTimeout(() => show(current), retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  async function get(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return response.json();
  }

  async function refreshSide() {
    try {
      const teams = await get(`/v1/team-leaderboards/revenue?${query({ window: "this_month",
                                                                       rank_by: "attainment" })}`);
      $("teams").replaceChildren(...teams.rows.map((row) => {
        const li = document.createElement("li");
        const pct = row.attainment === null ? null : Math.round(row.attainment * 100);
        li.innerHTML = "<span></span><div class='meter' role='meter' aria-valuemin='0' " +
                       "aria-valuemax='100'><span></span></div>";
        li.firstChild.textContent = `${row.name}: ${format(row.value, "revenue")}` +
                                    (pct === null ? "" : ` · ${pct} % of target`);
        li.querySelector(".meter").setAttribute("aria-valuenow", pct || 0);
        li.querySelector(".meter span").style.width = `${Math.min(pct || 0, 100)}%`;
        return li;
      }));
      const won = await get(`/v1/leaderboards/deals_won?${query({ window: "today",
                                                                   limit: 1000 })}`);
      const now = Object.fromEntries(won.rows.map((r) => [r.name, r.value || 0]));
      if (wonBefore) {
        const winners = Object.keys(now).filter((n) => now[n] > (wonBefore[n] || 0));
        if (winners.length) $("ticker").textContent = "★ " + winners.map(
          (n) => `${n} won a deal`).join(" · ");
      }
      wonBefore = now;
    } catch (error) {
      $("status").textContent = "offline";
    }
  }

  get(`/v1/metrics?${query({})}`).then((list) => {
    catalogue = Object.fromEntries(list.map((m) => [m.name, m]));
  }).catch(() => {}).finally(() => {
    show(0);
    refreshSide();
    setInterval(refreshSide, 10000);
    if (boards.length > 1) setInterval(() => show(current + 1), rotate);
  });
})();
