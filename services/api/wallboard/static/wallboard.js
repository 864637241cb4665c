// SalesPulse wallboard, live through Server-Sent Events. Configured by its URL:
//   leaderboards (rotating): ?key=<read key>&metrics=calls_total,revenue&windows=today,this_week
//     &team=<id>&rotate=<seconds>&theme=dark|light&limit=<rows>&show=pace
//   one contest: ?key=<read key>&contest=<id>&theme=dark|light&limit=<rows>
//   on both: &celebrate=<seconds> (a full-screen celebration of each deal won, target reached
//     and contest won; 6 by default, 0 turns it off) &currency=<ISO code, e.g. EUR> (amounts
//     with their currency sign; without it, deals' amounts are plain numbers)
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const key = params.get("key") || "";
  const limit = Math.min(50, Number(params.get("limit") || 10));
  const currency = /^[A-Za-z]{3}$/.test(params.get("currency") || "")
    ? params.get("currency").toUpperCase() : null;
  document.documentElement.dataset.theme = params.get("theme") === "light" ? "light" : "dark";

  const $ = (id) => document.getElementById(id);
  let catalogue = {};
  // The stream says when it cannot refresh what it shows (event "status"): until it says it can
  // again, the screen may be old, so it must not claim to be live.
  let stale = null;  // why the stream cannot refresh; null while it can

  function showStatus() {
    $("status").textContent = stale === null ? "live" : "reconnecting…";
    $("status").title = stale || "";
  }

  function element(tag, className, text) {
    const made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined) made.textContent = text;
    return made;
  }

  function format(value, metric) {
    if (value === null || value === undefined) return "–";
    const unit = (catalogue[metric] || {}).unit;
    if (unit === "ratio") return (value * 100).toFixed(1) + " %";
    if (unit === "currency") return currency ? money(Math.round(value))
      : Math.round(value).toLocaleString() + " €";
    if (unit === "seconds") return Math.round(value / 60) + " min";
    return Number(value).toLocaleString();
  }

  // An amount: with the currency's sign when the page was told the currency, else plain.
  function money(amount) {
    if (amount === null || amount === undefined || amount === "") return "";
    const value = Number(amount);
    if (!Number.isFinite(value)) return String(amount);
    const digits = { minimumFractionDigits: Number.isInteger(value) ? 0 : 2,
                     maximumFractionDigits: 2 };
    if (currency) {
      try {
        return value.toLocaleString(undefined, { style: "currency", currency, ...digits });
      } catch (error) { /* an unknown code: plain */ }
    }
    return value.toLocaleString(undefined, digits);
  }

  function title(metric) {
    return metric.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  }

  function share(part, whole) {  // 0..1, for a bar's width
    return whole ? Math.max(0, Math.min(1, (part || 0) / whole)) : 0;
  }

  // A horizontal meter: `fraction` filled, with an optional mark at `markAt` (both 0..1).
  function meter(className, fraction, label, markAt) {
    const bar = element("div", className);
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
    bar.setAttribute("aria-label", label);
    bar.title = label;
    const fill = bar.appendChild(element("span", "fill"));
    fill.style.width = `${fraction * 100}%`;
    if (markAt !== undefined && markAt !== null) {
      bar.appendChild(element("span", "mark")).style.left = `${markAt * 100}%`;
    }
    return bar;
  }

  // The delay before reconnecting a stream: 1 s, doubling up to 30 s, back to 1 s once it works.
  function backoff() {
    let delay = 1000;
    return {
      reset() { delay = 1000; },
      later(fn) {
        setTimeout(fn, delay);
        delay = Math.min(delay * 2, 30000);
      },
    };
  }

  // One live stream at a time; reconnects with a growing delay (EventSource alone may give up).
  const live = { source: null, retry: backoff() };

  // `onTrouble`, if given, hears of every failure and every "not live" status.
  function subscribe(url, event, onData, onTrouble) {
    if (live.source) live.source.close();
    const source = new EventSource(url);
    live.source = source;
    stale = null;
    source.addEventListener("status", (e) => {
      const status = JSON.parse(e.data);
      stale = status.live ? null : status.reason || "not live";
      showStatus();
      if (stale !== null && onTrouble) onTrouble();
    });
    source.addEventListener(event, (e) => {
      live.retry.reset();
      showStatus();
      onData(JSON.parse(e.data));
    });
    source.onerror = () => {
      $("status").textContent = "reconnecting…";
      source.close();
      if (onTrouble) onTrouble();
      live.retry.later(() => {
        if (live.source === source) subscribe(url, event, onData, onTrouble);
      });
    };
  }

  async function get(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      const error = new Error(`${path}: ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  // ---- Leaderboards: rotating boards, team totals, the ticker of wins ----

  function leaderboards() {
    const metrics = (params.get("metrics") || "calls_total,deals_won,revenue").split(",");
    const windows = (params.get("windows") || "today").split(",");
    const team = params.get("team");
    const rotate = Math.max(5, Number(params.get("rotate") || 30)) * 1000;
    const showPace = (params.get("show") || "").split(",").includes("pace");
    const boards = metrics.flatMap((m) => windows.map((w) => ({ metric: m, window: w })));
    const labels = { today: "today", yesterday: "yesterday", this_week: "this week",
                     this_month: "this month", last_7d: "last 7 days", last_24h: "last 24 h" };
    let current = 0;

    if (showPace) $("board").classList.add("with-pace");
    else document.querySelector("#board th.pace-col").remove();

    function query(extra) {
      const q = new URLSearchParams({ key, ...extra });
      if (team) q.set("team", team);
      return q.toString();
    }

    // Value against target, a mark where the rep should be by now; null: no target, no bar.
    function paceBar(row, metric) {
      const pace = row.pace;
      if (!pace || !pace.target) return null;
      const state = pace.pace === null ? "unknown" : pace.pace >= 1 ? "ahead" : "behind";
      const label = `${format(row.value, metric)} of ${format(pace.target, metric)}` +
        (pace.expected === null ? "" : `, ${format(pace.expected, metric)} expected by now`);
      const markAt = pace.expected === null ? null : share(pace.expected, pace.target);
      return meter(`pace-bar ${state}`, share(row.value, pace.target), label, markAt);
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
          [row.team_name ?? row.team_id ?? "", "team"],
          ...(showPace ? [["", "pace"]] : []),
          [format(row.value, board.metric), "num"],
        ];
        for (const [text, cls, label] of cells) {
          const td = element("td", cls, text);
          if (label) td.setAttribute("aria-label", label);
          if (cls === "pace") {
            const bar = paceBar(row, board.metric);
            if (bar) td.appendChild(bar);
          }
          tr.appendChild(td);
        }
        return tr;
      });
      $("rows").replaceChildren(...rows);
    }

    function show(index) {
      current = index % boards.length;
      const board = boards[current];
      subscribe(`/v1/stream/leaderboards/${board.metric}?${query({ window: board.window, limit })}`,
                "leaderboard", render);
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
      } catch (error) {
        $("status").textContent = "offline";
      }
    }

    show(0);
    refreshSide();
    setInterval(refreshSide, 10000);
    if (boards.length > 1) setInterval(() => show(current + 1), rotate);
  }

  // ---- One contest: podium, countdown, goal, then the winners ----

  function duration(ms) {
    const all = Math.max(0, Math.ceil(ms / 1000));
    const days = Math.floor(all / 86400), hours = Math.floor((all % 86400) / 3600);
    const two = (n) => String(n).padStart(2, "0");
    const minutes = two(Math.floor((all % 3600) / 60)), seconds = two(all % 60);
    const clock = days || hours ? `${hours}:${minutes}:${seconds}` : `${Number(minutes)}:${seconds}`;
    return days ? `${days} d ${clock}` : clock;
  }

  // What the countdown says at `now` (this screen's clock): [phase, text].
  function countdown(standings, now) {
    const at = (field) => Date.parse(standings[field]);
    if (standings.status === "completed") return ["final", "final standings"];
    if (now < at("starts_at")) return ["scheduled", `starts in ${duration(at("starts_at") - now)}`];
    if (now < at("ends_at")) return ["active", `ends in ${duration(at("ends_at") - now)}`];
    if (now < at("settles_at")) {
      return ["settling", `final standings in ${duration(at("settles_at") - now)}`];
    }
    return ["settling", "final standings any moment…"];
  }

  function contest(id) {
    $("leaderboard").hidden = true;
    $("contest").hidden = false;
    let standings = null;

    function scoreText(value) {
      const metric = standings.score.metric;
      if (metric) return format(value, metric);
      return value === null ? "–" : `${Number(value).toLocaleString()} pts`;
    }

    function rules() {
      const score = standings.score.metric ? title(standings.score.metric)
        : Object.entries(standings.score.points).map(([m, w]) => `${title(m)} × ${w}`).join(" + ");
      return standings.goal === null ? score : `${score} · goal ${scoreText(standings.goal)}`;
    }

    function goalParts(row) {
      if (standings.goal === null) return [];
      const label = `${row.name}: ${scoreText(row.score)} of ${scoreText(standings.goal)}`;
      const parts = [meter("goal-bar", share(row.score, standings.goal), label)];
      if (row.goal_reached_at) {
        const mark = element("span", "goal-mark", "✓");
        const at = new Date(row.goal_reached_at);
        mark.title = `goal reached at ${at.toLocaleTimeString([], { hour: "2-digit",
                                                                   minute: "2-digit" })}`;
        mark.setAttribute("aria-label", mark.title);
        parts.push(mark);
      }
      return parts;
    }

    function entry(row, onPodium) {  // on the podium, the step shows the rank
      const made = element("li", "entry" + (row.goal_reached_at ? " reached" : ""));
      made.dataset.rank = row.rank === null ? "" : String(row.rank);
      if (!onPodium) made.appendChild(element("span", "rank", row.rank === null ? "–" : row.rank));
      made.appendChild(element("span", "who", row.name));
      if (standings.participants === "reps") {
        made.appendChild(element("span", "team", row.team_name ?? row.team_id ?? ""));
      }
      made.appendChild(element("span", "score", scoreText(row.score)));
      made.append(...goalParts(row));
      return made;
    }

    function podium() {
      // Standard competition ranks: tied rows share a step, and the step after them is missing.
      return [1, 2, 3].flatMap((rank) => {
        const tied = standings.rows.filter((row) => row.rank === rank);
        if (!tied.length) return [];
        const step = element("li", "step");
        step.dataset.rank = String(rank);
        const names = step.appendChild(element("ol", "names"));
        names.append(...tied.map((row) => entry(row, true)));
        step.appendChild(element("div", "block", String(rank)));
        return [step];
      });
    }

    function tick() {
      if (!standings) return;
      const [phase, text] = countdown(standings, Date.now());
      $("countdown").textContent = text;
      $("countdown").dataset.phase = phase;
    }

    function winners() {
      const names = standings.winners.map((w) => element("li", "winner", w.name));
      $("winners-head").textContent = names.length > 1 ? "Winners" : names.length ? "Winner"
        : "No winner";
      $("winner-names").replaceChildren(...names);
      const top = standings.rows.find((row) => row.rank === 1);
      $("final-score").textContent = top ? `${standings.name}: ${scoreText(top.score)}` : "";
    }

    function render(received) {
      standings = received;
      $("title").textContent = standings.name;
      document.title = `${standings.name} · SalesPulse`;
      const done = standings.status === "completed";
      $("winners").hidden = !done;
      $("standings").hidden = done;
      $("rules").textContent = rules();
      $("podium").replaceChildren(...podium());
      const below = standings.rows.filter((row) => row.rank === null || row.rank > 3);
      $("rest").replaceChildren(...below.map((row) => entry(row, false)));
      const hidden = standings.rows_total - standings.rows.length;
      $("more").hidden = hidden <= 0;
      $("more").textContent = `+ ${hidden} more`;
      if (done) winners();
      tick();
    }

    // The stream of an unknown contest only says it cannot refresh: ask whether it exists.
    async function explain() {
      if (standings) return;
      try {
        await get(`/v1/contests/${encodeURIComponent(id)}?${new URLSearchParams({ key, limit: 1 })}`);
      } catch (error) {
        if (error.status === 404) $("title").textContent = `No contest “${id}”`;
      }
    }

    subscribe(`/v1/stream/contests/${encodeURIComponent(id)}?${new URLSearchParams({ key, limit })}`,
              "standings", render, explain);
    setInterval(tick, 1000);
  }

  // ---- Notifications: celebrations and the ticker of today's wins, from the server ----

  const CELEBRATED = { deal_won: "Deal won!", target_reached: "Target reached!",
                       contest_won: "Contest won!" };
  const celebrateMs = (() => {
    const raw = params.get("celebrate");
    const seconds = raw === null || raw.trim() === "" ? NaN : Number(raw);
    if (!Number.isFinite(seconds) || seconds < 0) return 6000;  // unset or unreadable: 6 s
    return Math.min(seconds, 600) * 1000;  // 0: off
  })();
  const MAX_QUEUED = 10;  // after a long outage, the replay should not hold the screen for long
  const MAX_TICKER = 20;

  // Two alerts watching the same thing raise two notifications in the same flush (same
  // raised_at): the screen shows one.
  function sameThing(n) {
    const d = n.data || {};
    const subject = n.subject || {};
    return [n.kind, subject.scope, subject.id, n.raised_at, d.deal_id, d.metric, d.window,
            d.contest].map((part) => part ?? "").join("|");
  }

  function nameOf(n) {
    return ((n.data || {}).subject || {}).name || (n.subject || {}).id || "";
  }

  function localDay(at) {
    const d = new Date(at);
    return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
  }

  // The ticker: today's deals won (this screen's local date), newest first.
  const wins = { list: [], keys: new Set(), loaded: false, day: null };

  function winText(n) {
    const d = n.data || {};
    const at = new Date(n.raised_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return `${at} ${d.text || `${nameOf(n)} won a deal ${money(d.amount)}`.trim()}`;
  }

  function addWins(found) {
    for (const n of found) {
      if (n.kind !== "deal_won" || wins.keys.has(sameThing(n))) continue;
      wins.keys.add(sameThing(n));
      wins.list.push(n);
    }
    wins.list.sort((a, b) => Date.parse(b.raised_at) - Date.parse(a.raised_at));
    wins.list.splice(MAX_TICKER);
    wins.keys = new Set(wins.list.map(sameThing));
    showWins();
  }

  function showWins() {
    const today = localDay(Date.now());
    const shown = wins.list.filter((n) => localDay(n.raised_at) === today);
    const ticker = $("ticker");
    if (shown.length) {
      ticker.replaceChildren(...shown.map((n, i) => {
        const item = element("span", "win", (i ? " · " : "★ ") + winText(n));
        item.dataset.id = n.id;
        return item;
      }));
      ticker.dataset.state = "wins";
    } else if (wins.loaded || (wins.day && wins.day !== today)) {
      // Every notification of today was read (or came by the stream since midnight): none.
      ticker.textContent = "Waiting for the first win of the day…";
      ticker.dataset.state = "waiting";
    } else {
      ticker.textContent = "";
      ticker.dataset.state = "unknown";
    }
  }

  // The newest notifications of every kind: other alerts may crowd the deals out. When all of
  // those read are today's and none is a deal, whether one was won earlier is unknown: the
  // ticker then claims neither.
  const READ = 100;

  async function loadWins() {
    try {
      const found = await get(`/v1/notifications?${new URLSearchParams({ key, limit: READ })}`);
      const list = found.notifications || [];
      const oldest = list[list.length - 1];
      wins.day = localDay(Date.now());
      wins.loaded = list.length < READ || localDay(oldest.raised_at) !== wins.day;
      addWins(list);
    } catch (error) {
      if (!wins.loaded && !wins.list.length) {  // unknown: claim neither wins nor none
        $("ticker").textContent = "";
        $("ticker").dataset.state = "unknown";
      }
    }
  }

  // The takeover: one at a time, each for `celebrateMs`, the rest queued.
  const party = { queue: [], shown: new Set(), busy: false };

  function celebrate(n) {
    if (!celebrateMs || !CELEBRATED[n.kind] || party.shown.has(sameThing(n))) return;
    party.shown.add(sameThing(n));
    if (party.shown.size > 500) party.shown = new Set([...party.shown].slice(-250));
    party.queue.push(n);
    party.queue.splice(0, party.queue.length - MAX_QUEUED);
    if (!party.busy) nextCelebration();
  }

  function headline(n) {
    const d = n.data || {};
    if (n.kind === "deal_won") return money(d.amount);
    if (n.kind === "target_reached") {
      const target = d.metric ? format(d.target, d.metric) : String(d.target ?? "");
      return `${target} ${d.metric ? title(d.metric).toLowerCase() : ""}`.trim();
    }
    return d.contest || "";
  }

  function nextCelebration() {
    const overlay = $("celebration");
    const n = party.queue.shift();
    if (!n) {
      party.busy = false;
      overlay.hidden = true;
      return;
    }
    party.busy = true;
    overlay.dataset.kind = n.kind;
    overlay.dataset.id = n.id;
    $("celebration-kind").textContent = CELEBRATED[n.kind];
    $("celebration-name").textContent = nameOf(n);
    $("celebration-amount").textContent = headline(n);
    $("celebration-text").textContent = (n.data || {}).text || "";
    overlay.hidden = false;
    // Restart the entrance animation for each one (none under prefers-reduced-motion).
    const card = overlay.firstElementChild;
    card.classList.remove("enter");
    void card.offsetWidth;
    card.classList.add("enter");
    setTimeout(nextCelebration, celebrateMs);
  }

  // Its own stream, beside the board's: EventSource reconnects by itself with Last-Event-ID
  // (the server replays what was missed); if it gives up, a new one starts, and the ticker is
  // read again for what the gap held.
  const alertsRetry = backoff();

  function watchNotifications() {
    const source = new EventSource(`/v1/stream/notifications?${new URLSearchParams({ key })}`);
    const state = (said) => { document.documentElement.dataset.notifications = said; };
    source.addEventListener("open", () => {
      alertsRetry.reset();
      state("live");
    });
    source.addEventListener("notification", (e) => {
      const n = JSON.parse(e.data);
      addWins([n]);
      celebrate(n);
    });
    source.addEventListener("error", () => {
      state("reconnecting");
      if (source.readyState !== EventSource.CLOSED) return;  // reconnecting by itself
      alertsRetry.later(() => {
        watchNotifications();
        loadWins();
      });
    });
  }

  watchNotifications();  // first, so nothing raised while the list is read is missed
  loadWins();
  setInterval(showWins, 60000);  // at midnight, yesterday's wins leave the ticker

  const contestId = params.get("contest");
  get(`/v1/metrics?${new URLSearchParams({ key })}`).then((list) => {
    catalogue = Object.fromEntries(list.map((m) => [m.name, m]));
  }).catch(() => {}).finally(() => (contestId ? contest(contestId) : leaderboards()));
})();
