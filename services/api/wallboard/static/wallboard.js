// SalesPulse wallboard, live through Server-Sent Events. Configured by its URL:
//   leaderboards (rotating): ?key=<read key>&metrics=calls_total,revenue&windows=today,this_week
//     &team=<id>&rotate=<seconds>&limit=<top N>&show=pace
//   one contest: ?key=<read key>&contest=<id>&rotate=<seconds>
//   on both: &lang=fr|en (default: the organisation's LOCALE) &theme=dark|light
//     &celebrate=<seconds> (a full-screen celebration of each deal won, target reached and
//     contest won; 6 by default, 0 turns it off) &sound=1 (a chime with each celebration)
//     &currency=<ISO code> (default: the organisation's CURRENCY)
// Whatever the screen, everything fits: rows that do not fit are shown a page at a time, each
// page for the rotation time, with a page indicator; only the ticker scrolls, inside its box.
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const key = params.get("key") || "";
  const asked = Number(params.get("limit"));
  const limit = Number.isInteger(asked) && asked > 0 ? Math.min(asked, 1000) : null;
  const rotateMs = Math.max(5, Number(params.get("rotate")) || 20) * 1000;
  const sound = params.get("sound") === "1";
  document.documentElement.dataset.theme = params.get("theme") === "light" ? "light" : "dark";

  const $ = (id) => document.getElementById(id);

  // ---- Language: every word on the page, in French and in English ----

  const NNBSP = "\u202f";  // French puts a narrow no-break space before ! ? : ;
  const TEXT = {
    fr: {
      rank: "Rang", rep: "Commercial", team: "Équipe", pace: "Rythme", movement: "Évolution",
      connecting: "connexion…", live: "en direct", reconnecting: "reconnexion…",
      offline: "hors ligne", asOf: "données de {time}", page: "Page {n} sur {total}",
      newcomer: "nouveau", up: "gagne {n}", down: "perd {n}", same: "inchangé",
      teams: "Équipes", ofTarget: "{pct} de l'objectif", noTarget: "sans objectif",
      teamsLabel: "Équipes face à leur objectif",
      waiting: "En attente de la première affaire du jour…",
      tickerLabel: "Affaires gagnées aujourd'hui",
      deal_won: `Affaire gagnée${NNBSP}!`, target_reached: `Objectif atteint${NNBSP}!`,
      contest_won: `Concours gagné${NNBSP}!`,
      startsIn: "début dans {d}", endsIn: "fin dans {d}", finalIn: "classement final dans {d}",
      finalSoon: "classement final d'un instant à l'autre…", final: "classement final",
      goal: "objectif {v}", points: "{v} pts", winner: "Gagnant", winners: "Gagnants",
      noWinner: "Aucun gagnant", more: "+ {n} autres", noContest: "Aucun concours « {id} »",
      reachedAt: "objectif atteint à {t}", podium: "Podium",
      rest: "Classement après le podium", days: "{d} j", wonBy: "{name} a gagné une affaire",
      of: "{v} sur {t}", expected: "{v} attendus à cette heure", minutes: "{n} min",
    },
    en: {
      rank: "Rank", rep: "Rep", team: "Team", pace: "Pace", movement: "Movement",
      connecting: "connecting…", live: "live", reconnecting: "reconnecting…",
      offline: "offline", asOf: "as of {time}", page: "Page {n} of {total}",
      newcomer: "new", up: "up {n}", down: "down {n}", same: "no change",
      teams: "Teams", ofTarget: "{pct} of target", noTarget: "no target",
      teamsLabel: "Team totals against target",
      waiting: "Waiting for the first win of the day…",
      tickerLabel: "Today's wins",
      deal_won: "Deal won!", target_reached: "Target reached!", contest_won: "Contest won!",
      startsIn: "starts in {d}", endsIn: "ends in {d}", finalIn: "final standings in {d}",
      finalSoon: "final standings any moment…", final: "final standings",
      goal: "goal {v}", points: "{v} pts", winner: "Winner", winners: "Winners",
      noWinner: "No winner", more: "+ {n} more", noContest: "No contest “{id}”",
      reachedAt: "goal reached at {t}", podium: "Podium",
      rest: "Standings below the podium", days: "{d} d", wonBy: "{name} won a deal",
      of: "{v} of {t}", expected: "{v} expected by now", minutes: "{n} min",
    },
  };
  const LOCALES = { fr: "fr-FR", en: "en-GB" };  // a language's usual formats (24-hour times)

  const org = {
    language: "fr", locale: "fr-FR", currency: "EUR", timezone: undefined,
    windows: {}, metrics: {},
  };
  let lang = "fr";
  let locale = "fr-FR";
  let currency = "EUR";

  function t(name, values) {
    const text = (TEXT[lang] || TEXT.en)[name] || name;
    return text.replace(/\{(\w+)\}/g, (_, k) => (values && k in values ? values[k] : ""));
  }

  function settle(found, metrics) {
    Object.assign(org, found);
    org.windows = Object.fromEntries((found.windows || []).map((w) => [w.name, w.labels]));
    org.metrics = Object.fromEntries(metrics.map((m) => [m.name, m]));
    const wanted = params.get("lang");
    lang = wanted === "fr" || wanted === "en" ? wanted : found.language || "fr";
    locale = lang === found.language ? found.locale : LOCALES[lang];
    const code = (params.get("currency") || "").toUpperCase();
    currency = /^[A-Z]{3}$/.test(code) ? code : found.currency || "EUR";
    document.documentElement.lang = lang;
    for (const node of document.querySelectorAll("[data-text]")) {
      node.textContent = t(node.dataset.text);
    }
    for (const node of document.querySelectorAll("[data-label]")) {
      node.setAttribute("aria-label", t(node.dataset.label));
      node.title = t(node.dataset.label);
    }
    $("ticker-box").setAttribute("aria-label", t("tickerLabel"));
    $("teams-box").setAttribute("aria-label", t("teamsLabel"));
    $("podium").setAttribute("aria-label", t("podium"));
    $("rest").setAttribute("aria-label", t("rest"));
  }

  function metricName(metric) {
    const found = org.metrics[metric];
    return (found && found.labels && found.labels[lang]) || metric.replace(/_/g, " ");
  }

  function windowName(name) {
    return (org.windows[name] || {})[lang] || name.replace(/_/g, " ");
  }

  // ---- Formats: Intl, in the page's locale and the organisation's currency and zone ----

  const formats = new Map();
  function intl(kind, options) {
    const id = kind + JSON.stringify(options);
    if (!formats.has(id)) {
      formats.set(id, kind === "date" ? new Intl.DateTimeFormat(locale, options)
        : new Intl.NumberFormat(locale, options));
    }
    return formats.get(id);
  }

  function number(value, digits = 0, fewest = digits) {
    return intl("number", { maximumFractionDigits: digits, minimumFractionDigits: fewest })
      .format(value);
  }

  function money(amount) {
    if (amount === null || amount === undefined || amount === "") return "";
    const value = Number(amount);
    if (!Number.isFinite(value)) return String(amount);
    const digits = Number.isInteger(value) ? 0 : 2;
    try {
      return intl("number", { style: "currency", currency, minimumFractionDigits: digits,
                              maximumFractionDigits: digits }).format(value);
    } catch (error) {
      return number(value, digits);
    }
  }

  function percent(ratio, digits = 1) {
    return intl("number", { style: "percent", minimumFractionDigits: digits,
                            maximumFractionDigits: digits }).format(ratio);
  }

  function clock(at) {
    return intl("date", { hour: "2-digit", minute: "2-digit", hourCycle: "h23",
                          timeZone: org.timezone }).format(at);
  }

  function format(value, metric) {
    if (value === null || value === undefined) return "–";
    const unit = (org.metrics[metric] || {}).unit;
    if (unit === "ratio") return percent(value);
    if (unit === "currency") return money(Math.round(value));
    if (unit === "seconds") return t("minutes", { n: number(Math.round(value / 60)) });
    if (unit === "days" || unit === "score") return number(value, 1);
    return number(value, Number.isInteger(value) ? 0 : 1);
  }

  // ---- Small pieces ----

  function element(tag, className, text) {
    const made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined) made.textContent = text;
    return made;
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
    bar.appendChild(element("span", "fill")).style.width = `${fraction * 100}%`;
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

  async function get(path, query) {
    const response = await fetch(`${path}?${new URLSearchParams({ key, ...query })}`,
                                 { headers: { Accept: "application/json" } });
    if (!response.ok) {
      const error = new Error(`${path}: ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  // ---- Freshness and the clock ----

  // The stream says when it cannot refresh what it shows (event "status"): until it says it can
  // again, the screen may be old, so it must not claim to be live.
  const fresh = { stale: null, asOf: null, connected: false };

  function showStatus() {
    const status = $("status");
    let state = "connecting";
    let text = t("connecting");
    if (fresh.stale !== null) {
      state = "stale";
      text = t("reconnecting");
    } else if (fresh.connected && fresh.asOf !== null && Date.now() - fresh.asOf > 60000) {
      state = "old";
      text = t("asOf", { time: clock(new Date(fresh.asOf)) });
    } else if (fresh.connected) {
      state = "live";
      text = t("live");
    }
    status.dataset.state = state;
    status.textContent = text;
    status.title = fresh.stale || "";
  }

  function tickClock() {
    $("clock").textContent = clock(new Date());
    showStatus();
  }

  // ---- One live stream at a time; reconnects with a growing delay ----

  const live = { source: null, retry: backoff() };

  // `onTrouble`, if given, hears of every failure and every "not live" status.
  function subscribe(path, query, event, onData, onTrouble) {
    if (live.source) live.source.close();
    const source = new EventSource(`${path}?${new URLSearchParams({ key, ...query })}`);
    live.source = source;
    fresh.stale = null;
    source.addEventListener("status", (e) => {
      const status = JSON.parse(e.data);
      fresh.stale = status.live ? null : status.reason || "not live";
      showStatus();
      if (fresh.stale !== null && onTrouble) onTrouble();
    });
    source.addEventListener(event, (e) => {
      live.retry.reset();
      fresh.connected = true;
      const data = JSON.parse(e.data);
      fresh.asOf = data.as_of ? Date.parse(data.as_of) : Date.now();
      showStatus();
      onData(data);
    });
    source.onerror = () => {
      fresh.stale = fresh.stale || "connection lost";
      showStatus();
      source.close();
      if (onTrouble) onTrouble();
      live.retry.later(() => {
        if (live.source === source) subscribe(path, query, event, onData, onTrouble);
      });
    };
  }

  // The whole width of a cell's text with its padding (a clipped cell draws an ellipsis).
  const ruler = document.createRange();
  function textWidth(cell) {
    ruler.selectNodeContents(cell);
    const style = getComputedStyle(cell);
    return ruler.getBoundingClientRect().width + parseFloat(style.paddingLeft)
      + parseFloat(style.paddingRight);
  }

  // ---- Pages: as many rows as fit, the rest a page at a time ----

  // `size`: rows a page holds, fitted once per board and screen size (0: to be fitted); it only
  // shrinks if a row turns out taller than the one it was fitted with, so pages stay put.
  const pager = { page: 0, pages: 1, size: 0, render: null };

  function showPage() {
    const indicator = $("page");
    indicator.hidden = pager.pages <= 1;
    indicator.textContent = t("page", { n: pager.page + 1, total: pager.pages });
  }

  // How many items of `list` fit in `box`, all being as tall as `probe` (rendered in `list`).
  function fitting(box, list, probe) {
    list.replaceChildren(probe);
    const height = probe.getBoundingClientRect().height || 1;
    const room = box.getBoundingClientRect().bottom - probe.getBoundingClientRect().top;
    list.replaceChildren();
    return Math.max(1, Math.floor((room - 1) / height));
  }

  // Drop the last items of `list` while its last one lies past `box`'s bottom: no cut row, ever.
  function trim(box, list) {
    const bottom = box.getBoundingClientRect().bottom + 0.5;
    let dropped = 0;
    while (list.children.length > 1
           && list.lastElementChild.getBoundingClientRect().bottom > bottom) {
      list.lastElementChild.remove();
      dropped += 1;
    }
    return dropped;
  }

  // The rows are fitted again whenever their box changes size: the window, or a neighbour that
  // grew (the teams panel filling in below the board on a portrait screen).
  function refitOnResize(box) {
    let height = null;
    let pending = false;
    new ResizeObserver(() => {
      const now = box.getBoundingClientRect().height;
      if (now === height || pending) return;
      height = now;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        pager.size = 0;
        if (pager.render) pager.render();
      });
    }).observe(box);
  }

  // ---- Leaderboards: rotating boards and pages, team totals ----

  function leaderboards() {
    const metrics = (params.get("metrics") || "calls_total,deals_won,revenue").split(",");
    const windows = (params.get("windows") || "today").split(",");
    const team = params.get("team");
    const showPace = (params.get("show") || "").split(",").includes("pace");
    const boards = metrics.flatMap((m) => windows.map((w) => ({ metric: m, window: w })));
    const state = { index: 0, board: null, teamName: null };

    if (!showPace) {
      for (const node of document.querySelectorAll("#board .pace, #board .pace-col")) {
        node.remove();
      }
    }

    function query(extra) {
      return team ? { ...extra, team } : extra;
    }

    // An earlier board with nobody ranked on it (the first calls of the day) is no earlier
    // ranking: nothing to move from, so no movement rather than "new" on every row.
    function compared(board) {
      return Boolean(board.compared_to) && board.rows.some((r) => r.previous_rank !== null);
    }

    function movement(row, board) {
      if (!board.compared || row.rank === null) return ["", "same", ""];
      if (row.previous_rank === null) return [t("newcomer"), "new", t("newcomer")];
      if (row.movement > 0) return [`▲${row.movement}`, "up", t("up", { n: row.movement })];
      if (row.movement < 0) return [`▼${-row.movement}`, "down", t("down", { n: -row.movement })];
      return ["=", "same", t("same")];
    }

    // Value against target, a mark where the rep should be by now; null: no target, no bar.
    function paceBar(row, metric) {
      const pace = row.pace;
      if (!pace || !pace.target) return null;
      const status = pace.pace === null ? "unknown" : pace.pace >= 1 ? "ahead" : "behind";
      let label = t("of", { v: format(row.value, metric), t: format(pace.target, metric) });
      if (pace.expected !== null) label += `, ${t("expected", { v: format(pace.expected, metric) })}`;
      const markAt = pace.expected === null ? null : share(pace.expected, pace.target);
      return meter(`pace-bar ${status}`, share(row.value, pace.target), label, markAt);
    }

    function rowOf(row, board) {
      const tr = document.createElement("tr");
      if (row.rank !== null && row.rank <= 3) tr.className = "top";
      tr.dataset.id = row.rep_id || row.team_id || "";
      tr.appendChild(element("td", "rank", row.rank === null ? "–" : String(row.rank)));
      const [text, kind, label] = movement(row, board);
      const move = tr.appendChild(element("td", "move"));
      if (text) {
        move.appendChild(element("span", kind, text));
        move.setAttribute("aria-label", label);
      }
      tr.appendChild(element("td", "name", row.name)).title = row.name;
      const teamName = row.team_name ?? row.team_id ?? "";
      tr.appendChild(element("td", "team", teamName)).title = teamName;
      if (showPace) {
        const cell = tr.appendChild(element("td", "pace"));
        const bar = paceBar(row, board.metric);
        if (bar) cell.appendChild(bar);
      }
      tr.appendChild(element("td", "num", format(row.value, board.metric)));
      return tr;
    }

    // Column widths from the widest text each holds on this page (measured as drawn: bold on
    // the podium's rows), so names and teams are cut only when the screen truly lacks the room.
    // Names get whatever is left.
    function sizeColumns() {
      const table = $("board");
      const widest = (selector) => Math.max(0, ...[...table.querySelectorAll(selector)]
        .map(textWidth));
      table.style.tableLayout = "auto";  // measured unclipped; laid out again before any paint
      const [value, names, teams, moves] = ["td.num, th.num", "td.name", "td.team, th.team",
                                            "td.move"].map((cells) => widest(cells) + 2);
      table.style.tableLayout = "";
      const col = (name) => table.querySelector(`col.${name}-col`);
      col("value").style.width = `${value}px`;
      col("move").style.width = "";  // its share of the type size, unless a mark needs more
      col("move").style.width = `${Math.max(moves, col("move").getBoundingClientRect().width)}px`;
      const fixed = ["rank", "move", "pace"].map(col).filter(Boolean)
        .reduce((sum, c) => sum + c.getBoundingClientRect().width, 0);
      const room = table.getBoundingClientRect().width - fixed - value;
      const team = Math.min(teams, Math.max(room - names, room * 0.38));
      col("team").style.width = `${Math.max(0, Math.floor(team))}px`;
    }

    function render() {
      const board = state.board;
      if (!board) return;
      const rows = limit ? board.rows.slice(0, limit) : board.rows;
      const name = `${metricName(board.metric)} · ${windowName(board.window)}`
        + (state.teamName ? ` · ${state.teamName}` : "");
      $("title").textContent = name;
      $("caption").textContent = name;
      $("metric-head").textContent = metricName(board.metric);
      const body = $("rows");
      const probe = rows.length ? rowOf(rows[0], board) : rowOf({ rank: 1, name: "M", value: 0 },
                                                                   board);
      pager.size = pager.size || fitting($("board-box"), body, probe);
      pager.pages = Math.max(1, Math.ceil(rows.length / pager.size));
      pager.page = Math.min(pager.page, pager.pages - 1);
      const start = pager.page * pager.size;
      body.replaceChildren(...rows.slice(start, start + pager.size).map((r) => rowOf(r, board)));
      sizeColumns();  // for this page's names: a page is a screen of its own
      if (trim($("board-box"), body)) {  // a row taller than the probe: fewer per page
        pager.size = body.children.length;
        pager.pages = Math.max(1, Math.ceil(rows.length / pager.size));
      }
      showPage();
    }
    pager.render = render;

    function show(index) {
      state.index = index % boards.length;
      state.board = null;
      pager.page = 0;
      pager.size = 0;
      const board = boards[state.index];
      subscribe(`/v1/stream/leaderboards/${encodeURIComponent(board.metric)}`,
                query({ window: board.window, limit: limit || 1000 }), "leaderboard",
                (received) => {
                  state.board = { ...received, compared: compared(received) };
                  render();
                });
    }

    function advance() {  // the next page, or the first page of the next board
      if (pager.page + 1 < pager.pages) {
        pager.page += 1;
        render();
      } else if (boards.length > 1) {
        show(state.index + 1);
      } else if (pager.pages > 1) {
        pager.page = 0;
        render();
      }
    }

    async function refreshTeams() {
      try {
        const found = await get("/v1/team-leaderboards/revenue",
                                { window: "this_month", rank_by: "attainment" });
        const head = $("teams-head");
        head.replaceChildren(t("teams"), element("span", "sub",
          `${metricName("revenue")} · ${windowName("this_month")}`));
        const items = found.rows.map((row) => {
          const li = element("li");
          li.dataset.id = row.team_id;
          li.appendChild(element("span", "team-name", row.name)).title = row.name;
          const value = li.appendChild(element("span", "team-value", format(row.value, "revenue")));
          const pct = row.attainment === null ? null : row.attainment;
          value.appendChild(document.createTextNode(" "));
          value.appendChild(element("span", "team-share", pct === null ? t("noTarget")
            : t("ofTarget", { pct: percent(pct, 0) })));
          if (pct !== null) {  // no target, no bar: an empty bar would say "nothing done"
            li.appendChild(meter("meter", share(pct, 1), t("ofTarget", { pct: percent(pct, 0) })));
          }
          return li;
        });
        const teamName = team ? (found.rows.find((r) => r.team_id === team) || {}).name : null;
        if (teamName !== state.teamName) {  // a board of one team says which, in its title
          state.teamName = teamName;
          render();
        }
        const list = $("teams");
        list.replaceChildren(...items);
        trim(list, list);
      } catch (error) {
        fresh.stale = fresh.stale || "offline";
        showStatus();
      }
    }

    refitOnResize($("board-box"));
    show(0);
    refreshTeams();
    setInterval(refreshTeams, 15000);
    setInterval(advance, rotateMs);
  }

  // ---- One contest: podium, countdown, goal, then the winners ----

  function duration(ms) {
    const all = Math.max(0, Math.ceil(ms / 1000));
    const days = Math.floor(all / 86400), hours = Math.floor((all % 86400) / 3600);
    const two = (n) => String(n).padStart(2, "0");
    const minutes = two(Math.floor((all % 3600) / 60)), seconds = two(all % 60);
    const time = days || hours ? `${hours}:${minutes}:${seconds}` : `${Number(minutes)}:${seconds}`;
    return days ? `${t("days", { d: days })} ${time}` : time;
  }

  // What the countdown says at `now` (this screen's clock): [phase, text].
  function countdown(standings, now) {
    const at = (field) => Date.parse(standings[field]);
    if (standings.status === "completed") return ["final", t("final")];
    if (now < at("starts_at")) return ["scheduled", t("startsIn", { d: duration(at("starts_at") - now) })];
    if (now < at("ends_at")) return ["active", t("endsIn", { d: duration(at("ends_at") - now) })];
    if (now < at("settles_at")) {
      return ["settling", t("finalIn", { d: duration(at("settles_at") - now) })];
    }
    return ["settling", t("finalSoon")];
  }

  function contest(id) {
    $("leaderboard").hidden = true;
    $("contest").hidden = false;
    let standings = null;

    function scoreText(value) {
      const metric = standings.score.metric;
      if (metric) return format(value, metric);
      return value === null ? "–" : t("points", { v: number(value, 1, 0) });
    }

    function rules() {
      const score = standings.score.metric ? metricName(standings.score.metric)
        : Object.entries(standings.score.points)
          .map(([m, w]) => `${metricName(m)} × ${number(w, 6, 0)}`)
          .join(" + ");
      return standings.goal === null ? score
        : `${score} · ${t("goal", { v: scoreText(standings.goal) })}`;
    }

    function goalParts(row) {
      if (standings.goal === null) return [];
      const label = `${row.name}: ${t("of", { v: scoreText(row.score),
                                             t: scoreText(standings.goal) })}`;
      // Always a cell (the rows' columns line up); a mark only for who reached the goal.
      const mark = element("span", row.goal_reached_at ? "goal-mark" : "goal-none",
                           row.goal_reached_at ? "✓" : "");
      if (row.goal_reached_at) {
        mark.title = t("reachedAt", { t: clock(new Date(row.goal_reached_at)) });
        mark.setAttribute("aria-label", mark.title);
      }
      return [meter("goal-bar", share(row.score, standings.goal), label), mark];
    }

    function entry(row, onPodium) {  // on the podium, the step shows the rank
      const made = element("li", "entry" + (row.goal_reached_at ? " reached" : ""));
      made.dataset.rank = row.rank === null ? "" : String(row.rank);
      made.dataset.id = row.rep_id || row.team_id || "";
      if (!onPodium) made.appendChild(element("span", "rank", row.rank === null ? "–" : row.rank));
      made.appendChild(element("span", "who", row.name)).title = row.name;
      const teamName = standings.participants === "reps" ? row.team_name ?? row.team_id ?? "" : "";
      made.appendChild(element("span", "team", teamName)).title = teamName;
      made.appendChild(element("span", "score", scoreText(row.score)));
      made.append(...goalParts(row));
      return made;
    }

    function podium() {
      // Standard competition ranks: tied rows share a step, and the step after them is missing.
      return [1, 2, 3].flatMap((rank) => {
        const tied = standings.rows.filter((row) => row.rank === rank).slice(0, 3);
        if (!tied.length) return [];
        const step = element("li", "step");
        step.dataset.rank = String(rank);
        step.appendChild(element("ol", "names")).append(...tied.map((row) => entry(row, true)));
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
      $("winners-head").textContent = names.length > 1 ? t("winners")
        : names.length ? t("winner") : t("noWinner");
      $("winner-names").replaceChildren(...names);
      const top = standings.rows.find((row) => row.rank === 1);
      $("final-score").textContent = top ? `${standings.name} : ${scoreText(top.score)}`
        .replace(" :", lang === "fr" ? `${NNBSP}:` : ":") : "";
    }

    function render() {
      if (!standings) return;
      $("title").textContent = standings.name;
      document.title = `${standings.name} · SalesPulse`;
      const done = standings.status === "completed";
      $("winners").hidden = !done;
      $("standings").hidden = done;
      $("rules").textContent = rules();
      $("podium").replaceChildren(...podium());
      const onPodium = new Set([...$("podium").querySelectorAll(".entry")].map((e) => e.dataset.id));
      const below = standings.rows.filter((row) => !onPodium.has(row.rep_id || row.team_id || ""));
      const list = $("rest");
      if (!pager.size) pager.size = below.length ? fitting(list, list, entry(below[0], false)) : 1;
      pager.pages = Math.max(1, Math.ceil(below.length / pager.size));
      pager.page = Math.min(pager.page, pager.pages - 1);
      const start = pager.page * pager.size;
      list.replaceChildren(...below.slice(start, start + pager.size).map((r) => entry(r, false)));
      // As on the boards: the widest score and team of the page, names getting what is left.
      const widest = (cells) => Math.max(0, ...[...list.querySelectorAll(cells)].map(textWidth));
      const score = widest(".score") + 2;
      list.style.setProperty("--score", `${Math.ceil(score)}px`);
      const first = list.firstElementChild;
      const room = first ? first.querySelector(".who").getBoundingClientRect().width
        + first.querySelector(".team").getBoundingClientRect().width : 0;
      const team = Math.min(widest(".team") + 2, Math.max(room - widest(".who") - 2, room * 0.4));
      list.style.setProperty("--team", `${Math.max(0, Math.floor(team))}px`);
      if (trim(list, list)) {
        pager.size = list.children.length;
        pager.pages = Math.max(1, Math.ceil(below.length / pager.size));
      }
      const hidden = standings.rows_total - standings.rows.length;
      $("more").hidden = hidden <= 0;
      $("more").textContent = t("more", { n: number(hidden) });
      showPage();
      if (done) winners();
      tick();
    }
    pager.render = render;

    // The stream of an unknown contest only says it cannot refresh: ask whether it exists.
    async function explain() {
      if (standings) return;
      try {
        await get(`/v1/contests/${encodeURIComponent(id)}`, { limit: 1 });
      } catch (error) {
        if (error.status === 404) $("title").textContent = t("noContest", { id });
      }
    }

    subscribe(`/v1/stream/contests/${encodeURIComponent(id)}`, { limit: 1000 }, "standings",
              (received) => { standings = received; render(); }, explain);
    refitOnResize($("rest"));
    setInterval(tick, 1000);
    setInterval(() => {
      if (pager.pages > 1) {
        pager.page = (pager.page + 1) % pager.pages;
        render();
      }
    }, rotateMs);
  }

  // ---- The ticker: today's wins, from the data; scrolling inside its box when they overflow ----

  const ticker = { known: false, wins: [], timer: null };

  function showTicker() {
    const track = $("ticker");
    track.classList.remove("scrolling");
    track.style.removeProperty("--ticker-shift");
    if (!ticker.known) {
      track.replaceChildren();
      track.dataset.state = "unknown";
      return;
    }
    if (!ticker.wins.length) {
      track.replaceChildren(element("span", "waiting", t("waiting")));
      track.dataset.state = "waiting";
      return;
    }
    const items = () => ticker.wins.map((w) => {
      const item = element("span", "win");
      item.dataset.id = w.deal_id;
      item.appendChild(element("span", "at", clock(new Date(w.won_at))));
      item.appendChild(document.createTextNode(`★ ${w.name} · ${money(w.amount)}`));
      return item;
    });
    track.replaceChildren(...items());
    track.dataset.state = "wins";
    const box = $("ticker-box");
    const room = box.clientWidth - parseFloat(getComputedStyle(box).paddingLeft) * 2;
    if (track.scrollWidth <= room) return;
    // Too long for the box: the list twice in a row, moving left by one list, for ever.
    const gap = parseFloat(getComputedStyle(track).columnGap) || 0;
    const shift = track.scrollWidth + gap;
    const copy = items();
    copy.forEach((node) => node.setAttribute("aria-hidden", "true"));
    track.append(...copy);
    track.style.setProperty("--ticker-shift", `-${shift}px`);
    const speed = parseFloat(getComputedStyle(box).fontSize) * 4;  // 4 em a second
    track.style.setProperty("--ticker-seconds", `${Math.max(8, shift / speed)}s`);
    track.classList.add("scrolling");
  }

  async function loadWins() {
    const team = params.get("team");
    try {
      const found = await get("/v1/wins", { window: "today", limit: 30, ...(team ? { team } : {}) });
      ticker.known = true;
      ticker.wins = found.wins;
    } catch (error) {
      if (!ticker.wins.length) ticker.known = false;
    }
    showTicker();
  }

  // ---- Celebrations: one at a time, from the notifications stream ----

  const CELEBRATED = new Set(["deal_won", "target_reached", "contest_won"]);
  const celebrateMs = (() => {
    const raw = params.get("celebrate");
    const seconds = raw === null || raw.trim() === "" ? NaN : Number(raw);
    if (!Number.isFinite(seconds) || seconds < 0) return 6000;  // unset or unreadable: 6 s
    return Math.min(seconds, 600) * 1000;  // 0: off
  })();
  const MAX_QUEUED = 10;  // after a long outage, the replay should not hold the screen for long
  const party = { queue: [], shown: new Set(), busy: false };

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

  function celebrate(n) {
    if (!celebrateMs || !CELEBRATED.has(n.kind) || party.shown.has(sameThing(n))) return;
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
      return `${target} ${d.metric ? metricName(d.metric).toLowerCase() : ""}`.trim();
    }
    return d.contest || "";
  }

  // A short rising chime (?sound=1), made here: no sound file to fetch. A TV's browser may
  // need to allow sound without a click (Chromium: --autoplay-policy=no-user-gesture-required).
  let audio = null;
  function chime() {
    if (!sound) return;
    try {
      audio = audio || new AudioContext();
      if (audio.state === "suspended") audio.resume();
      const start = audio.currentTime;
      [523.25, 659.25, 783.99].forEach((pitch, i) => {
        const tone = audio.createOscillator();
        const level = audio.createGain();
        tone.frequency.value = pitch;
        level.gain.setValueAtTime(0.0001, start + i * 0.12);
        level.gain.exponentialRampToValueAtTime(0.3, start + i * 0.12 + 0.02);
        level.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.12 + 0.6);
        tone.connect(level).connect(audio.destination);
        tone.start(start + i * 0.12);
        tone.stop(start + i * 0.12 + 0.65);
      });
      document.documentElement.dataset.chimes = String(Number(document.documentElement.dataset.chimes || 0) + 1);
    } catch (error) { /* no sound on this screen */ }
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
    $("celebration-kind").textContent = t(n.kind);
    $("celebration-name").textContent = nameOf(n);
    $("celebration-amount").textContent = headline(n);
    $("celebration-text").textContent = (n.data || {}).text || "";
    overlay.hidden = false;
    chime();
    // Restart the entrance animation for each one (none under prefers-reduced-motion).
    const card = overlay.firstElementChild;
    card.classList.remove("enter");
    void card.offsetWidth;
    card.classList.add("enter");
    setTimeout(nextCelebration, celebrateMs);
  }

  // Its own stream, beside the board's: EventSource reconnects by itself with Last-Event-ID
  // (the server replays what was missed); if it gives up, a new one starts.
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
      if (n.kind === "deal_won") loadWins();  // the ticker hears of it at once
      celebrate(n);
    });
    source.addEventListener("error", () => {
      state("reconnecting");
      if (source.readyState !== EventSource.CLOSED) return;  // reconnecting by itself
      alertsRetry.later(watchNotifications);
    });
  }

  // ---- For tests and for a person at the screen: which page, and go to one ----

  window.wallboard = {
    get page() { return pager.page; },
    get pages() { return pager.pages; },
    show(page) {
      pager.page = Math.max(0, Math.min(page, pager.pages - 1));
      if (pager.render) pager.render();
    },
  };

  // ---- Start: the organisation's language, formats and names first ----

  Promise.all([get("/v1/organisation").catch(() => ({})), get("/v1/metrics").catch(() => [])])
    .then(([found, metrics]) => {
      settle(found, metrics);
      tickClock();
      setInterval(tickClock, 1000);
      watchNotifications();
      loadWins();
      setInterval(loadWins, 20000);
      window.addEventListener("resize", showTicker);
      const contestId = params.get("contest");
      if (contestId) contest(contestId);
      else leaderboards();
    });
})();
