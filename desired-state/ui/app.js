// Mooring's status page. Everything shown comes from the authenticated JSON
// API; the bearer token lives only in this tab's sessionStorage. Data is put
// on the page with DOM APIs and textContent, never parsed as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "mooring.token";
  const PLURALS = { Node: "nodes", NodeSet: "nodesets", Relay: "relays", Worker: "workers" };
  const KINDS = Object.keys(PLURALS);
  const CONDITIONS = ["Ready", "Synced", "Progressing", "Degraded"];
  const PAGE = 1000;

  // The store of what the page knows: key "Kind/namespace/name" → document.
  const resources = new Map();
  // key → the row showing it; "Kind/namespace" → its table group.
  const rows = new Map();
  const groups = new Map();

  let token = null;
  let lastSeq = null;
  let watchAbort = null;
  let generation = 0; // bumps at sign-out so stale loops stop
  let awsRegion = null;
  const refetching = new Map(); // key → "pending" | "again"

  const $ = (id) => document.getElementById(id);

  // Exposed for tests and benchmarks: when the page was loaded and how many
  // rows it shows (not used by the page itself).
  window.mooringStatus = { loadedAt: Date.now(), rows: () => rows.size, updates: 0 };

  // ---------- small DOM helpers ----------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "text") e.textContent = v;
        else if (k === "class") e.className = v;
        else e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function keyOf(kind, ns, name) {
    return kind + "/" + ns + "/" + name;
  }

  function docKey(doc) {
    return keyOf(doc.kind, doc.metadata.namespace || "", doc.metadata.name);
  }

  function resourcePath(kind, ns, name) {
    return "/v1/namespaces/" + encodeURIComponent(ns) + "/" + PLURALS[kind] + "/" + encodeURIComponent(name);
  }

  function age(ts) {
    if (!ts) return "";
    const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
    if (s < 120) return s + "s";
    if (s < 7200) return Math.floor(s / 60) + "m";
    if (s < 172800) return Math.floor(s / 3600) + "h";
    return Math.floor(s / 86400) + "d";
  }

  function condition(doc, type) {
    const list = (doc.status && doc.status.conditions) || [];
    return list.find((c) => c.type === type) || null;
  }

  function isReady(doc) {
    const c = condition(doc, "Ready");
    return !!c && c.status === "True";
  }

  // ---------- the API ----------

  class Unauthorized extends Error {}

  async function api(path, init) {
    const headers = { Authorization: "Bearer " + token, Accept: "application/json" };
    const resp = await fetch(path, Object.assign({ headers, cache: "no-store", credentials: "omit" }, init || {}));
    if (resp.status === 401) {
      let msg = "the server refused the token";
      try {
        msg = (await resp.json()).error.message || msg;
      } catch (_) {
        /* keep the default */
      }
      throw new Unauthorized(msg);
    }
    return resp;
  }

  async function apiJson(path) {
    const resp = await api(path);
    const body = await resp.json().catch(() => null);
    if (!resp.ok) {
      const msg = body && body.error ? body.error.message : resp.statusText;
      const err = new Error(resp.status + ": " + msg);
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  // Reads every page of a kind, handing each page over as it arrives (so
  // the page renders while the next one is on its way).
  async function listAll(kind, onPage) {
    let cont = "";
    for (;;) {
      let path = "/v1/" + PLURALS[kind] + "?limit=" + PAGE;
      if (cont) path += "&continue=" + encodeURIComponent(cont);
      const page = await apiJson(path);
      onPage(page.items || []);
      cont = page.metadata && page.metadata.continue;
      if (!cont) return;
    }
  }

  function handleError(e) {
    if (e instanceof Unauthorized) {
      signOut("The server refused the token (401): " + e.message);
      return true;
    }
    return false;
  }

  // ---------- sign in / out ----------

  function showOnly(id) {
    for (const s of ["login", "fleet", "detail"]) $(s).hidden = s !== id;
    $("signout").hidden = id === "login";
  }

  function signOut(message) {
    generation++;
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    if (watchAbort) watchAbort.abort();
    watchAbort = null;
    resources.clear();
    rows.clear();
    groups.clear();
    refetching.clear();
    clear($("tables"));
    // Nothing the previous token could read stays in the tab: the namespace
    // choices and the detail view go too.
    const namespaces = $("f-namespace");
    while (namespaces.options.length > 1) namespaces.remove(1);
    namespaces.value = "";
    for (const id of ["detail-summary", "detail-conditions", "detail-aws", "detail-events", "detail-revisions",
                      "diff-from", "diff-to", "detail-diff", "detail-rendered"]) clear($(id));
    $("detail-title").textContent = "";
    $("detail-message").textContent = "";
    $("counts").textContent = "";
    currentDetail = null;
    revisionList = [];
    lastSeq = null;
    setLive("off", "not connected");
    $("login-message").textContent = message || "";
    showOnly("login");
    $("token").value = "";
    $("token").focus();
  }

  async function signIn(t) {
    token = t;
    sessionStorage.setItem(TOKEN_KEY, t);
    $("login-message").textContent = "";
    const gen = ++generation;
    route();
    try {
      await loadRegion();
      await startWatch(gen, true);
    } catch (e) {
      if (!handleError(e)) $("fleet-message").textContent = "Could not load the fleet: " + e.message;
    }
  }

  async function loadRegion() {
    try {
      const r = await fetch("/readyz", { cache: "no-store", credentials: "omit" });
      const body = await r.json();
      const region = body && body.aws && body.aws.region;
      awsRegion = typeof region === "string" && /^[a-z0-9-]+$/.test(region) ? region : null;
    } catch (_) {
      awsRegion = null;
    }
  }

  // ---------- the fleet ----------

  async function loadAll() {
    // What was known before the lists were read and is not in them is gone;
    // what the watch added meanwhile stays.
    const before = new Set(resources.keys());
    const fresh = new Set();
    const t0 = performance.now();
    let building = 0;
    const onPage = (items) => {
      const t = performance.now();
      for (const doc of items) fresh.add(docKey(doc));
      addPage(items);
      building += performance.now() - t;
    };
    await Promise.all(KINDS.map((kind) => listAll(kind, onPage)));
    const t1 = performance.now();
    for (const key of before) {
      if (!fresh.has(key)) remove(key, true);
    }
    refreshNamespaces();
    applyFilters();
    window.mooringStatus.lastLoad = { startedAt: t0, fetchMs: t1 - t0, renderMs: building + performance.now() - t1 };
  }

  // Puts one page of a list on the page, each table's new rows in name order
  // (the server's order depends on its database's collation): appended at
  // once when they all come after the rows there, else merged in one pass.
  function addPage(items) {
    const batches = new Map();
    for (const doc of items) {
      const key = docKey(doc);
      const old = resources.get(key);
      if (old && rv(old) > rv(doc)) continue;
      resources.set(key, doc);
      const row = buildRow(doc);
      filterRow(row, doc);
      const prev = rows.get(key);
      rows.set(key, row);
      if (prev) {
        prev.replaceWith(row);
        continue;
      }
      const g = group(doc.kind, doc.metadata.namespace);
      if (!batches.has(g)) batches.set(g, []);
      batches.get(g).push(row);
    }
    for (const [g, batch] of batches) {
      batch.sort((a, b) => (a.dataset.name < b.dataset.name ? -1 : 1));
      const last = g.tbody.lastElementChild;
      if (!last || last.dataset.name < batch[0].dataset.name) {
        const frag = document.createDocumentFragment();
        frag.append(...batch);
        g.tbody.append(frag);
      } else {
        let cursor = g.tbody.firstElementChild;
        for (const row of batch) {
          while (cursor && cursor.dataset.name <= row.dataset.name) cursor = cursor.nextElementSibling;
          g.tbody.insertBefore(row, cursor);
        }
      }
    }
    updateCounts();
  }

  function rv(doc) {
    return Number((doc.metadata && doc.metadata.resourceVersion) || 0);
  }

  // Records a document unless an equal or newer one is already known.
  function upsert(doc, live) {
    const key = docKey(doc);
    const old = resources.get(key);
    if (old && rv(old) > rv(doc)) return;
    resources.set(key, doc);
    if (!live) return;
    const row = buildRow(doc);
    const prev = rows.get(key);
    if (prev) {
      prev.replaceWith(row);
    } else {
      insertRow(group(doc.kind, doc.metadata.namespace), row, doc.metadata.name);
    }
    rows.set(key, row);
    filterRow(row, doc);
    window.mooringStatus.updates++;
    if (!old) refreshNamespaces();
    updateCounts();
  }

  function remove(key, live) {
    resources.delete(key);
    const row = rows.get(key);
    if (row) {
      row.remove();
      rows.delete(key);
    }
    if (live) {
      const [kind, ns] = key.split("/");
      const g = groups.get(kind + "/" + ns);
      if (g && !g.tbody.firstChild) {
        g.section.remove();
        groups.delete(kind + "/" + ns);
      }
      window.mooringStatus.updates++;
      updateCounts();
    }
  }

  function groupOrder(a, b) {
    const [ka, na] = a.split("/");
    const [kb, nb] = b.split("/");
    return KINDS.indexOf(ka) - KINDS.indexOf(kb) || (na < nb ? -1 : na > nb ? 1 : 0);
  }

  // The table of one kind in one namespace, created in order when missing.
  function group(kind, ns) {
    const gk = kind + "/" + ns;
    let g = groups.get(gk);
    if (g) return g;
    g = buildGroup(kind, ns);
    groups.set(gk, g);
    const later = Array.from(groups.keys())
      .filter((k) => k !== gk && groupOrder(k, gk) > 0)
      .sort(groupOrder)[0];
    $("tables").insertBefore(g.section, later ? groups.get(later).section : null);
    return g;
  }

  function buildGroup(kind, ns) {
    const tbody = el("tbody");
    const head = el("tr");
    for (const h of ["Name", "Conditions", "Replicas", "Last scaling", "Labels", "Revision", "Age"]) {
      head.append(el("th", { scope: "col", text: h }));
    }
    const caption = el("caption", { text: kind + "s in " + ns });
    const table = el("table", { class: "fleet" }, caption, el("thead", null, head), tbody);
    const section = el("div", { class: "group", "data-kind": kind, "data-namespace": ns }, table);
    return { kind, ns, section, tbody };
  }

  function insertRow(g, row, name) {
    let before = null;
    for (const r of g.tbody.rows) {
      if (r.dataset.name > name) {
        before = r;
        break;
      }
    }
    g.tbody.insertBefore(row, before);
  }

  function badge(doc, type) {
    const c = condition(doc, type);
    const status = c ? c.status : "Unknown";
    const word = status === "True" ? "yes" : status === "False" ? "no" : "?";
    // Good is Ready/Synced true, or Progressing/Degraded false.
    const good = type === "Ready" || type === "Synced" ? status === "True" : status === "False";
    const tone = !c || status === "Unknown" ? "unknown" : good ? "good" : type === "Progressing" ? "busy" : "bad";
    const title = c
      ? type + "=" + status + (c.reason ? " — " + c.reason : "") + (c.message ? ": " + c.message : "")
      : type + ": not reported yet";
    return el("span", {
      class: "badge " + tone,
      title,
      "data-condition": type,
      "data-status": status,
      text: type + ": " + word,
    });
  }

  function buildRow(doc) {
    const m = doc.metadata;
    const s = doc.status || {};
    const tr = el("tr", { "data-key": docKey(doc), "data-name": m.name });
    const link = el("a", { href: "#/" + PLURALS[doc.kind] + "/" + m.namespace + "/" + m.name, text: m.name });
    tr.append(el("th", { scope: "row" }, link, m.deletionTimestamp ? el("span", { class: "deleting", text: " deleting" }) : null));
    const conds = el("td", { class: "conditions" });
    for (const t of CONDITIONS) conds.append(badge(doc, t));
    tr.append(conds);
    tr.append(el("td", { class: "num", text: replicasText(doc) }));
    const ls = s.lastScaling;
    tr.append(
      el("td", {
        text: ls ? ls.from + "→" + ls.to + " " + ls.reason : "",
        title: ls ? new Date(ls.time).toLocaleString() + " " + JSON.stringify(ls.inputs || {}) : null,
      }),
    );
    const labels = el("td", { class: "labels" });
    for (const [k, v] of Object.entries(m.labels || {})) labels.append(el("span", { class: "label", text: k + "=" + v }));
    tr.append(labels);
    const revision = m.appliedRevision || "";
    tr.append(el("td", { class: "mono", title: revision || null, text: revision.slice(0, 7) }));
    tr.append(el("td", { class: "num", title: m.creationTimestamp, text: age(m.creationTimestamp) }));
    return tr;
  }

  // ---------- filters and counts ----------

  function parseSelector(text) {
    const terms = [];
    for (const part of text.split(",")) {
      const p = part.trim();
      if (!p) continue;
      const neq = p.indexOf("!=");
      if (neq > 0) terms.push({ key: p.slice(0, neq).trim(), value: p.slice(neq + 2).trim(), neg: true });
      else if (p.indexOf("=") > 0) {
        const i = p.indexOf("=");
        terms.push({ key: p.slice(0, i).trim(), value: p.slice(i + 1).replace(/^=/, "").trim(), neg: false });
      } else terms.push({ key: p, value: null, neg: false });
    }
    return terms;
  }

  let filters = { ns: "", kind: "", selector: [], notReady: false };

  function matches(doc) {
    if (filters.ns && doc.metadata.namespace !== filters.ns) return false;
    if (filters.kind && doc.kind !== filters.kind) return false;
    if (filters.notReady && isReady(doc)) return false;
    const labels = doc.metadata.labels || {};
    for (const t of filters.selector) {
      const has = Object.prototype.hasOwnProperty.call(labels, t.key);
      if (t.value === null) {
        if (!has) return false;
      } else if (t.neg ? has && labels[t.key] === t.value : !has || labels[t.key] !== t.value) return false;
    }
    return true;
  }

  function filterRow(row, doc) {
    // Only a real change touches the DOM (and invalidates its style).
    const hide = !matches(doc);
    if (row.hidden !== hide) row.hidden = hide;
  }

  function applyFilters() {
    filters = {
      ns: $("f-namespace").value,
      kind: $("f-kind").value,
      selector: parseSelector($("f-labels").value),
      notReady: $("f-notready").checked,
    };
    for (const [key, row] of rows) filterRow(row, resources.get(key));
    updateCounts();
  }

  // A relay's or worker's replicas (running/desired), or a node set's Ready members.
  function replicasText(doc) {
    const s = doc.status || {};
    if (typeof s.replicas === "number") return (s.readyReplicas || 0) + "/" + ((doc.spec && doc.spec.replicas) || 0);
    return s.replicas ? s.replicas.running + "/" + s.replicas.desired : "";
  }

  function updateCounts() {
    const total = { all: 0, ready: 0 };
    const per = {};
    for (const k of KINDS) per[k] = { all: 0, ready: 0 };
    for (const doc of resources.values()) {
      if (!matches(doc)) continue;
      const r = isReady(doc) ? 1 : 0;
      total.all++;
      total.ready += r;
      if (per[doc.kind]) {
        per[doc.kind].all++;
        per[doc.kind].ready += r;
      }
    }
    const counts = $("counts");
    clear(counts);
    counts.append(el("strong", { id: "count-total", text: total.ready + " Ready of " + total.all }));
    for (const k of KINDS) {
      if (per[k].all) counts.append(" · " + k + "s: " + per[k].ready + " of " + per[k].all);
    }
    for (const g of groups.values()) {
      let any = false;
      for (const r of g.tbody.rows) {
        if (!r.hidden) {
          any = true;
          break;
        }
      }
      if (g.section.hidden === any) g.section.hidden = !any;
    }
  }

  function refreshNamespaces() {
    const sel = $("f-namespace");
    const have = new Set(Array.from(sel.options).map((o) => o.value));
    const all = new Set();
    for (const doc of resources.values()) all.add(doc.metadata.namespace);
    for (const ns of Array.from(all).sort()) {
      if (!have.has(ns)) sel.append(el("option", { value: ns, text: ns }));
    }
  }

  // ---------- live updates ----------

  function setLive(state, text) {
    const l = $("live");
    l.className = "live " + state;
    l.textContent = text;
  }

  async function refetch(key) {
    if (refetching.has(key)) {
      refetching.set(key, "again");
      return;
    }
    refetching.set(key, "pending");
    const gen = generation;
    try {
      do {
        refetching.set(key, "pending");
        const [kind, ns, name] = key.split("/");
        const resp = await api(resourcePath(kind, ns, name));
        if (gen !== generation) return;
        if (resp.status === 404) remove(key, true);
        else if (resp.ok) upsert(await resp.json(), true);
        else if (resp.status === 429 || resp.status === 503) {
          // Over the token's request budget (or the store is away): look again later.
          const secs = Number(resp.headers.get("Retry-After")) || 1;
          await new Promise((r) => setTimeout(r, Math.min(secs, 30) * 1000));
          refetching.set(key, "again");
        }
      } while (refetching.get(key) === "again");
    } catch (e) {
      handleError(e);
    } finally {
      refetching.delete(key);
    }
    if (currentDetail && currentDetail.key === key) showDetail(currentDetail, false);
  }

  function onChange(change) {
    if (typeof change.seq === "number") lastSeq = change.seq;
    if (!PLURALS[change.kind]) return;
    const key = keyOf(change.kind, change.namespace, change.name);
    if (change.op === "delete") {
      remove(key, true);
      if (currentDetail && currentDetail.key === key) showDetail(currentDetail, false);
      return;
    }
    refetch(key);
  }

  // Reads Server-Sent Events from a fetch body (EventSource cannot send an
  // Authorization header).
  async function readEvents(body, gen) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let data = [];
    let event = "message";
    for (;;) {
      const { value, done } = await reader.read();
      if (done || gen !== generation) return;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (line === "") {
          if (data.length && event === "change") {
            try {
              onChange(JSON.parse(data.join("\n")));
            } catch (_) {
              /* a malformed event is skipped */
            }
          }
          data = [];
          event = "message";
        } else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        else if (line.startsWith("event:")) event = line.slice(6).trim();
      }
    }
  }

  // Opens the watch, (re)loads what may have been missed, then follows the
  // stream; on a disconnect retries with backoff from the last sequence seen.
  async function startWatch(gen, first) {
    let delay = 1000;
    let needFullLoad = true;
    while (gen === generation) {
      const ctl = new AbortController();
      watchAbort = ctl;
      try {
        const path = "/v1/watch" + (lastSeq !== null ? "?since=" + lastSeq : "");
        const resp = await api(path, { signal: ctl.signal, headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" } });
        if (!resp.ok) throw new Error("watch answered " + resp.status);
        setLive("on", "live");
        // Without a sequence to resume from, the list is the truth: the watch
        // is open first, so nothing between the list and the stream is lost.
        if (needFullLoad || lastSeq === null) {
          const reading = readEvents(resp.body, gen);
          // A failed load below must not leave this stream reading on.
          reading.catch(() => {});
          await loadAll();
          if (first) {
            $("fleet-message").textContent = "";
            first = false;
          }
          needFullLoad = false;
          delay = 1000;
          await reading;
        } else {
          delay = 1000;
          await readEvents(resp.body, gen);
        }
        if (gen !== generation) return;
        throw new Error("the stream ended");
      } catch (e) {
        // Close this attempt's stream before anything else: a browser keeps
        // only a few connections per origin.
        ctl.abort();
        if (gen !== generation) return;
        if (handleError(e)) return;
        if (lastSeq === null) needFullLoad = true;
        const secs = Math.round(delay / 1000);
        setLive("off", "disconnected — retrying in " + secs + "s");
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 30000);
      }
    }
  }

  // ---------- detail view ----------

  let currentDetail = null;

  function route() {
    if (!token) {
      showOnly("login");
      return;
    }
    const m = /^#\/(nodes|nodesets|relays|workers)\/([^/]+)\/([^/]+)$/.exec(location.hash);
    if (m) {
      const kind = KINDS.find((k) => PLURALS[k] === m[1]);
      const ns = decodeURIComponent(m[2]);
      const name = decodeURIComponent(m[3]);
      currentDetail = { kind, ns, name, key: keyOf(kind, ns, name) };
      showOnly("detail");
      showDetail(currentDetail, true);
    } else {
      currentDetail = null;
      showOnly("fleet");
    }
  }

  function table(caption, headers, rowsData) {
    const head = el("tr");
    for (const h of headers) head.append(el("th", { scope: "col", text: h }));
    const body = el("tbody");
    for (const r of rowsData) {
      const tr = el("tr");
      r.forEach((cell, i) => {
        const tag = i === 0 ? "th" : "td";
        const attrs = i === 0 ? { scope: "row" } : null;
        tr.append(typeof cell === "string" || typeof cell === "number" ? el(tag, Object.assign({ text: String(cell) }, attrs)) : el(tag, attrs, cell));
      });
      body.append(tr);
    }
    return el("table", { class: "detail" }, el("caption", { text: caption }), el("thead", null, head), body);
  }

  function setBox(id, node) {
    const box = $(id);
    clear(box);
    box.append(node);
  }

  async function showDetail(d, full) {
    const gen = generation;
    $("detail-title").textContent = d.kind + " " + d.ns + "/" + d.name;
    $("detail-message").textContent = "";
    const base = resourcePath(d.kind, d.ns, d.name);
    try {
      const resp = await api(base);
      if (gen !== generation || currentDetail !== d) return;
      if (resp.status === 404) {
        $("detail-message").textContent = "This " + d.kind.toLowerCase() + " does not exist (any more).";
        return;
      }
      const doc = await resp.json();
      if (!resp.ok) {
        $("detail-message").textContent = doc.error ? doc.error.message : resp.statusText;
        return;
      }
      // A new generation has new revisions and a new rendering.
      if (d.generation !== doc.metadata.generation) full = true;
      d.generation = doc.metadata.generation;
      renderSummary(doc);
      renderConditions(doc);
      renderAws(doc);
      const [events, revisions, rendered] = await Promise.all([
        apiJson(base + "/events").catch((e) => e),
        full ? apiJson(base + "/revisions").catch((e) => e) : null,
        full ? api(base + "/rendered").catch((e) => e) : null,
      ]);
      if (gen !== generation || currentDetail !== d) return;
      for (const r of [events, revisions, rendered]) if (r instanceof Unauthorized) return handleError(r);
      renderEvents(events);
      if (full) {
        renderRevisions(revisions);
        await renderRendered(d.kind, rendered);
      }
    } catch (e) {
      if (!handleError(e)) $("detail-message").textContent = "Could not load: " + e.message;
    }
  }

  function renderSummary(doc) {
    const m = doc.metadata;
    const dl = $("detail-summary");
    clear(dl);
    const add = (k, v) => {
      dl.append(el("dt", { text: k }), el("dd", { text: v }));
    };
    add("Generation", String(m.generation) + (doc.status && doc.status.observedGeneration !== undefined ? " (observed " + doc.status.observedGeneration + ")" : ""));
    add("Resource version", m.resourceVersion);
    add("Created", m.creationTimestamp + " (" + age(m.creationTimestamp) + " ago)");
    if (m.deletionTimestamp) add("Deletion requested", m.deletionTimestamp);
    add("Source revision", m.appliedRevision || "—");
    const labels = Object.entries(m.labels || {}).map(([k, v]) => k + "=" + v);
    add("Labels", labels.length ? labels.join(", ") : "—");
    const annotations = Object.entries(m.annotations || {}).map(([k, v]) => k + "=" + v);
    add("Annotations", annotations.length ? annotations.join(", ") : "—");
    const rep = doc.status && doc.status.replicas;
    if (typeof rep === "number") {
      const st = doc.status;
      add("Members", (st.readyReplicas || 0) + " Ready, " + (st.updatedReplicas || 0) + " on revision " + (st.updateRevision || "—") + ", of " + doc.spec.replicas);
      for (const mem of st.members || []) {
        add(mem.name, (mem.ready ? "Ready" : "not Ready") + ", revision " + (mem.revision || "—") + (mem.instanceId ? ", " + mem.instanceId : ""));
      }
    } else if (rep) add("Replicas", rep.running + " running of " + rep.desired + " desired");
    const ls = doc.status && doc.status.lastScaling;
    if (ls) add("Last scaling", ls.from + "→" + ls.to + " " + ls.reason + " at " + ls.time);
    const ro = doc.status && doc.status.rollout;
    if (ro) {
      let text = ro.strategy + " " + ro.state + (ro.stage ? " at " + ro.stage : "");
      text += ", " + Math.round(ro.productionPercent || 0) + "% of production on the new revision";
      if (ro.waitingFor) text += ", waiting for " + (ro.waitingFor === "Approval" ? "approval (mooring rollout promote)" : "the HTTP checks");
      if (ro.rollbackReason) text += "; rolled back: " + ro.rollbackReason;
      add("Rollout", text);
    }
  }

  function renderConditions(doc) {
    const list = (doc.status && doc.status.conditions) || [];
    if (!list.length) return setBox("detail-conditions", el("p", { text: "No conditions reported yet." }));
    setBox(
      "detail-conditions",
      table(
        "Conditions",
        ["Type", "Status", "Reason", "Message", "Last transition"],
        list.map((c) => [c.type, badge(doc, c.type), c.reason || "", c.message || "", c.lastTransitionTime || ""]),
      ),
    );
  }

  // Every string in status that names an AWS resource: ARNs, ids, URLs.
  function awsIdentifiers(status) {
    const found = [];
    const walk = (v, path) => {
      if (v === null || v === undefined) return;
      if (Array.isArray(v)) return v.forEach((x, i) => walk(x, path + "[" + i + "]"));
      if (typeof v === "object") {
        if (path.endsWith("conditions") || path.endsWith("lastScaling")) return;
        for (const [k, x] of Object.entries(v)) walk(x, path ? path + "." + k : k);
        return;
      }
      if (typeof v !== "string") return;
      const leaf = path.split(".").pop().replace(/\[\d+\]$/, "");
      if (v.startsWith("arn:") || /^https:\/\/sqs\./.test(v) || /(Arn|Id|Url|Ip|Endpoint|^id|^arn|^url|^endpoint|^cluster)$/.test(leaf) || /^(i|vol|sg|subnet|ami)-[0-9a-f]+$/.test(v)) {
        found.push({ path: "status." + path, value: v });
      }
    };
    walk(status || {}, "");
    return found;
  }

  // A link to the AWS console for an identifier, or null (no Region known,
  // as on the simulated cloud, or a kind of identifier without a page).
  function consoleLink(path, value) {
    if (!awsRegion) return null;
    const r = awsRegion;
    const base = "https://" + r + ".console.aws.amazon.com/";
    const q = "?region=" + r;
    const enc = encodeURIComponent;
    let m;
    if ((m = /^arn:aws[a-z-]*:ecs:[^:]*:\d*:service\/([^/]+)\/([^/]+)$/.exec(value))) {
      return base + "ecs/v2/clusters/" + enc(m[1]) + "/services/" + enc(m[2]) + "/health" + q;
    }
    if ((m = /^arn:aws[a-z-]*:ecs:[^:]*:\d*:task-definition\/([^:]+):(\d+)$/.exec(value))) {
      return base + "ecs/v2/task-definitions/" + enc(m[1]) + "/" + m[2] + "/containers" + q;
    }
    if (/^https:\/\/sqs\./.test(value) || (/queue/i.test(path) && /^https?:\/\//.test(value))) {
      return base + "sqs/v3/home" + q + "#/queues/" + enc(value);
    }
    if ((m = /^arn:aws[a-z-]*:sqs:[^:]*:(\d+):(.+)$/.exec(value))) {
      return base + "sqs/v3/home" + q + "#/queues/" + enc("https://sqs." + r + ".amazonaws.com/" + m[1] + "/" + m[2]);
    }
    if (/^i-[0-9a-f]+$/.test(value)) return base + "ec2/home" + q + "#InstanceDetails:instanceId=" + enc(value);
    if (/^vol-[0-9a-f]+$/.test(value)) return base + "ec2/home" + q + "#VolumeDetails:volumeId=" + enc(value);
    if (/^arn:aws[a-z-]*:elasticache:/.test(value) || /^status\.cache\.id$/.test(path)) {
      const id = value.startsWith("arn:") ? value.split(":").pop() : value;
      return base + "elasticache/home" + q + "#/redis/" + enc(id);
    }
    if (/^arn:aws[a-z-]*:codebuild:[^:]*:\d*:build\/([^:]+):(.+)$/.test(value)) {
      const [, project] = /build\/([^:]+):/.exec(value);
      return base + "codesuite/codebuild/projects/" + enc(project) + "/history" + q;
    }
    return null;
  }

  function renderAws(doc) {
    const ids = awsIdentifiers(doc.status);
    if (!ids.length) return setBox("detail-aws", el("p", { text: "None recorded yet." }));
    const rowsData = ids.map(({ path, value }) => {
      const href = consoleLink(path, value);
      const cell = href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", text: value }) : el("span", { class: "mono", text: value });
      return [path, cell];
    });
    const box = el("div", null, table("AWS identifiers recorded in status", ["Field", "Identifier"], rowsData));
    if (!awsRegion) box.append(el("p", { class: "hint", text: "No console links: this server does not act in an AWS Region (simulated cloud)." }));
    setBox("detail-aws", box);
  }

  function renderEvents(events) {
    if (events instanceof Error) return setBox("detail-events", el("p", { class: "error", text: events.message }));
    const items = (events && events.items) || [];
    if (!items.length) return setBox("detail-events", el("p", { text: "No events." }));
    setBox(
      "detail-events",
      table(
        "Events, newest first",
        ["Reason", "Type", "Message", "Count", "Last seen"],
        items.map((e) => [e.reason, e.type, e.message, String(e.count), e.lastSeen]),
      ),
    );
  }

  let revisionList = [];

  function renderRevisions(revs) {
    if (revs instanceof Error) return setBox("detail-revisions", el("p", { class: "error", text: revs.message }));
    revisionList = ((revs && revs.items) || []).slice().sort((a, b) => a.generation - b.generation);
    setBox(
      "detail-revisions",
      table(
        "Revisions (signed, append-only)",
        ["Generation", "Source", "Actor", "Commit", "Time", "Spec hash"],
        revisionList.map((r) => [String(r.generation), r.source, r.actor || "", (r.commit || "").slice(0, 7), r.createdAt, (r.specHash || "").slice(0, 12)]),
      ),
    );
    const from = $("diff-from");
    const to = $("diff-to");
    clear(from);
    clear(to);
    for (const r of revisionList) {
      from.append(el("option", { value: String(r.generation), text: "generation " + r.generation }));
      to.append(el("option", { value: String(r.generation), text: "generation " + r.generation }));
    }
    $("diff-form").hidden = revisionList.length < 2;
    if (revisionList.length >= 2) {
      from.value = String(revisionList[revisionList.length - 2].generation);
      to.value = String(revisionList[revisionList.length - 1].generation);
    }
    renderDiff();
  }

  // The paths that differ between two specs: added, removed, changed.
  function diff(a, b, path, out) {
    const isObj = (v) => v !== null && typeof v === "object";
    if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of Array.from(keys).sort((x, y) => (Array.isArray(a) ? x - y : x < y ? -1 : x > y ? 1 : 0))) {
        const p = Array.isArray(a) ? path + "[" + k + "]" : path + "." + k;
        if (!(k in a)) out.push({ op: "added", path: p, before: undefined, after: b[k] });
        else if (!(k in b)) out.push({ op: "removed", path: p, before: a[k], after: undefined });
        else diff(a[k], b[k], p, out);
      }
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      out.push({ op: "changed", path, before: a, after: b });
    }
    return out;
  }

  function renderDiff() {
    const box = $("detail-diff");
    clear(box);
    if (revisionList.length < 2) return;
    const a = revisionList.find((r) => String(r.generation) === $("diff-from").value);
    const b = revisionList.find((r) => String(r.generation) === $("diff-to").value);
    if (!a || !b) return;
    const changes = diff(a.spec, b.spec, "spec", []);
    if (!changes.length) return box.append(el("p", { text: "No difference between generation " + a.generation + " and " + b.generation + "." }));
    const show = (v) => (v === undefined ? "" : JSON.stringify(v));
    box.append(
      table(
        "Spec changes from generation " + a.generation + " to " + b.generation,
        ["Field", "Change", "Before", "After"],
        changes.map((c) => [c.path, el("span", { class: "op " + c.op, text: c.op }), show(c.before), show(c.after)]),
      ),
    );
  }

  async function renderRendered(kind, resp) {
    $("rendered-title").textContent =
      kind === "Node" ? "Rendered user data" : kind === "NodeSet" ? "Rendered (see each member node)" : "Rendered task definition";
    if (resp instanceof Error) return setBox("detail-rendered", el("p", { class: "error", text: resp.message }));
    const body = await resp.json().catch(() => null);
    if (!resp.ok) {
      return setBox("detail-rendered", el("p", { class: "hint", text: body && body.error ? body.error.message : "not available (" + resp.status + ")" }));
    }
    const text = body.format === "userData" ? body.userData : JSON.stringify(body.taskDefinition, null, 2);
    setBox("detail-rendered", el("pre", { class: "rendered", tabindex: "0", text }));
  }

  // ---------- wiring ----------

  function init() {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim();
      if (t) signIn(t);
    });
    $("signout").addEventListener("click", () => signOut("Signed out."));
    for (const id of ["f-namespace", "f-kind", "f-notready"]) $(id).addEventListener("change", applyFilters);
    $("f-labels").addEventListener("input", applyFilters);
    $("filters").addEventListener("submit", (ev) => ev.preventDefault());
    $("diff-form").addEventListener("submit", (ev) => ev.preventDefault());
    $("diff-from").addEventListener("change", renderDiff);
    $("diff-to").addEventListener("change", renderDiff);
    window.addEventListener("hashchange", route);
    // Ages move on while the page stays open.
    setInterval(() => {
      for (const row of rows.values()) {
        const cell = row.lastElementChild;
        if (cell && cell.title) cell.textContent = age(cell.title);
      }
    }, 30000);
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved);
    else signOut("");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
