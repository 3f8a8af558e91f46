// Shoal's web UI: a small client-side router over Consul's HTTP API. Each page runs
// blocking queries (?index=&wait=) and patches its tables in place, row by row and cell
// by cell, so updates need no reload and move nothing on the page.

const WAIT = "5m";
const base = new URL(document.baseURI).pathname;
const main = document.getElementById("main");
const statusLine = document.getElementById("status");
let datacenter = "";
let page = null; // {controller}: the running page's queries, stopped on navigation

// ---- DOM helpers ----

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  el.append(...children);
  return el;
}

function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** A health badge: colour and text, updated in place. */
function setStatus(el, status) {
  let badge = el.querySelector(":scope > .status");
  if (!badge) {
    badge = h("span");
    el.replaceChildren(badge);
  }
  const cls = `status status-${status}`;
  if (badge.className !== cls) badge.className = cls;
  setText(badge, status);
}

function setLink(el, href, text) {
  let a = el.querySelector(":scope > a");
  if (!a) {
    a = h("a");
    el.replaceChildren(a);
  }
  const target = base + href;
  if (a.getAttribute("href") !== target) a.setAttribute("href", target);
  setText(a, text);
}

/** Replaces a cell's children only when what they show changed. */
function setContent(el, signature, build) {
  if (el.dataset.sig === signature) return;
  el.dataset.sig = signature;
  el.replaceChildren(...build());
}

function worst(statuses) {
  let worst = "passing";
  for (const s of statuses) {
    if (s === "critical" || s === "maintenance") return "critical";
    if (s === "warning") worst = "warning";
  }
  return worst;
}

function announce(text, error = false) {
  statusLine.classList.toggle("error", error);
  setText(statusLine, text);
}

/**
 * A table whose rows are kept by key: `update` adds, removes, reorders and patches rows,
 * never rebuilding the ones already shown.
 */
class KeyedTable {
  constructor(label, columns) {
    this.columns = columns;
    this.rows = new Map();
    this.body = h("tbody");
    const cols = h("colgroup", {}, ...columns.map((c) => h("col", c.width ? { style: `width:${c.width}` } : {})));
    const head = h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col", text: c.label }))));
    this.el = h("table", { "aria-label": label }, cols, head, this.body);
  }

  update(items, keyOf) {
    const seen = new Set();
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      seen.add(key);
      let row = this.rows.get(key);
      if (!row) {
        const tr = h("tr");
        const cells = this.columns.map((c) => tr.appendChild(h("td", { "data-label": c.label })));
        row = { tr, cells };
        this.rows.set(key, row);
      }
      this.columns.forEach((c, i) => c.render(row.cells[i], item, row.tr));
      const next = previous ? previous.nextSibling : this.body.firstChild;
      if (next !== row.tr) this.body.insertBefore(row.tr, next);
      previous = row.tr;
    }
    for (const [key, row] of this.rows) {
      if (!seen.has(key)) {
        row.tr.remove();
        this.rows.delete(key);
      }
    }
  }
}

function rowHealth(tr, status) {
  const cls = `health-${status}`;
  if (tr.className !== cls) tr.className = cls;
}

// ---- blocking queries ----

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/**
 * Calls `onData` with the endpoint's answer, then again each time its X-Consul-Index
 * moves, until `signal` aborts. Errors are shown and retried with a growing pause.
 */
async function watch(path, signal, onData) {
  let index = 0;
  let failures = 0;
  const sep = path.includes("?") ? "&" : "?";
  while (!signal.aborted) {
    try {
      const url = `/v1/${path}${sep}dc=${encodeURIComponent(datacenter)}` + (index ? `&index=${index}&wait=${WAIT}` : "");
      const response = await fetch(url, { signal });
      if (!response.ok) throw new Error(`${response.status}: ${(await response.text()).trim()}`);
      const next = Number(response.headers.get("X-Consul-Index")) || 0;
      const data = await response.json();
      if (signal.aborted) return;
      if (failures) announce("Reconnected.");
      failures = 0;
      if (next !== index || index === 0) onData(data);
      // Consul's rule: an index that went backwards starts over.
      index = next < index ? 0 : next;
    } catch (e) {
      if (signal.aborted) return;
      failures += 1;
      announce(`Cannot reach the agent (${e.message}); retrying.`, true);
      await sleep(Math.min(30000, 500 * 2 ** failures), signal);
    }
  }
}

/** For endpoints that do not block: asks again every few seconds. */
async function poll(path, signal, onData) {
  while (!signal.aborted) {
    try {
      const response = await fetch(`/v1/${path}`, { signal });
      if (!response.ok) throw new Error(`${response.status}: ${(await response.text()).trim()}`);
      onData(await response.json());
    } catch (e) {
      if (signal.aborted) return;
      onData(null, e.message);
    }
    await sleep(3000, signal);
  }
}

// ---- pages ----

function heading(text) {
  return h("h1", { tabindex: "-1", text });
}

function servicesPage(signal) {
  const name = h("input", { type: "search", id: "filter-name", autocomplete: "off" });
  const tag = h("input", { type: "search", id: "filter-tag", autocomplete: "off" });
  const status = h("select", { id: "filter-status" },
    ...["any", "passing", "warning", "critical"].map((s) => h("option", { value: s, text: s })));
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter services" },
    h("label", { for: "filter-name" }, "Name", name),
    h("label", { for: "filter-tag" }, "Tag", tag),
    h("label", { for: "filter-status" }, "Health", status));
  filters.addEventListener("submit", (e) => e.preventDefault());
  const count = h("p", { class: "count", "aria-live": "polite" });
  const table = new KeyedTable("Services", [
    { label: "Service", width: "30%", render: (td, s) => setLink(td, `${datacenter}/services/${encodeURIComponent(s.Name)}`, s.Name) },
    { label: "Health", width: "9rem", render: (td, s, tr) => { setStatus(td, s.health); rowHealth(tr, s.health); } },
    { label: "Checks", width: "16%", render: (td, s) => setText(td, `${s.ChecksPassing} passing, ${s.ChecksWarning} warning, ${s.ChecksCritical} critical`) },
    { label: "Instances", width: "7rem", render: (td, s) => setText(td, s.InstanceCount) },
    { label: "Tags", render: (td, s) => { td.className = "tags"; setText(td, s.Tags.join(", ")); } },
  ]);
  main.replaceChildren(heading("Services"), filters, count, table.el);

  let services = [];
  const known = new Map();
  const apply = () => {
    const n = name.value.trim().toLowerCase();
    const t = tag.value.trim().toLowerCase();
    const st = status.value;
    let shown = 0;
    for (const s of services) {
      const visible = (!n || s.Name.toLowerCase().includes(n))
        && (!t || s.Tags.some((x) => x.toLowerCase().includes(t)))
        && (st === "any" || s.health === st);
      const row = table.rows.get(s.Name);
      if (row && row.tr.hidden === visible) row.tr.hidden = !visible;
      if (visible) shown += 1;
    }
    setText(count, `${shown} of ${services.length} services`);
  };
  for (const input of [name, tag, status]) input.addEventListener("input", apply);

  watch("internal/ui/services", signal, (list) => {
    const started = performance.now();
    services = list.map((s) => ({
      ...s,
      Tags: s.Tags || [],
      health: s.ChecksCritical ? "critical" : s.ChecksWarning ? "warning" : "passing",
    }));
    const changed = [];
    for (const s of services) {
      const before = known.get(s.Name);
      if (before && before !== s.health) changed.push(`${s.Name} is now ${s.health}`);
      known.set(s.Name, s.health);
    }
    table.update(services, (s) => s.Name);
    apply();
    if (changed.length) announce(changed.join("; "));
    document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
  });
}

function checkList(checks) {
  return h("ul", { class: "checks" }, ...checks.map((c) => {
    const badge = h("span");
    setStatus(badge, c.Status);
    const li = h("li", {}, badge, ` ${c.Name || c.CheckID}`);
    if (c.Output) li.append(h("span", { class: "output", text: c.Output }));
    return li;
  }));
}

function signature(checks) {
  return checks.map((c) => `${c.CheckID}\u0000${c.Status}\u0000${c.Output}`).join("\u0001");
}

function servicePage(signal, serviceName) {
  const count = h("p", { class: "count", "aria-live": "polite" });
  const table = new KeyedTable(`Instances of ${serviceName}`, [
    { label: "Instance", width: "18%", render: (td, i) => setText(td, i.Service.ID) },
    { label: "Node", width: "16%", render: (td, i) => setLink(td, `${datacenter}/nodes/${encodeURIComponent(i.Node.Node)}`, i.Node.Node) },
    { label: "Address", width: "15%", render: (td, i) => setText(td, `${i.Service.Address || i.Node.Address}:${i.Service.Port}`) },
    { label: "Health", width: "9rem", render: (td, i, tr) => { const s = worst(i.Checks.map((c) => c.Status)); setStatus(td, s); rowHealth(tr, s); } },
    { label: "Checks", render: (td, i) => setContent(td, signature(i.Checks), () => [checkList(i.Checks)]) },
    { label: "Tags", width: "12%", render: (td, i) => { td.className = "tags"; setText(td, (i.Service.Tags || []).join(", ")); } },
  ]);
  main.replaceChildren(heading(serviceName), count, table.el);
  watch(`health/service/${encodeURIComponent(serviceName)}`, signal, (instances) => {
    table.update(instances, (i) => `${i.Node.Node}/${i.Service.ID}`);
    setText(count, instances.length ? `${instances.length} instances` : "No instances registered.");
  });
}

function nodesPage(signal) {
  const count = h("p", { class: "count", "aria-live": "polite" });
  const table = new KeyedTable("Nodes", [
    { label: "Node", width: "25%", render: (td, n) => setLink(td, `${datacenter}/nodes/${encodeURIComponent(n.Node)}`, n.Node) },
    { label: "Address", width: "18%", render: (td, n) => setText(td, n.Address) },
    { label: "serfHealth", width: "9rem", render: (td, n) => setStatus(td, n.serf) },
    { label: "Health", width: "9rem", render: (td, n, tr) => { setStatus(td, n.health); rowHealth(tr, n.health); } },
    { label: "Checks", render: (td, n) => setText(td, n.summary) },
  ]);
  main.replaceChildren(heading("Nodes"), count, table.el);
  let nodes = null;
  let checks = null;
  const render = () => {
    if (!nodes || !checks) return;
    const byNode = new Map();
    for (const c of checks) {
      if (!byNode.has(c.Node)) byNode.set(c.Node, []);
      byNode.get(c.Node).push(c);
    }
    const rows = nodes.map((n) => {
      const own = byNode.get(n.Node) || [];
      const serf = own.find((c) => c.CheckID === "serfHealth");
      const counts = { passing: 0, warning: 0, critical: 0 };
      for (const c of own) counts[worst([c.Status])] += 1;
      return {
        ...n,
        serf: serf ? serf.Status : "critical",
        health: worst(own.map((c) => c.Status)),
        summary: `${counts.passing} passing, ${counts.warning} warning, ${counts.critical} critical`,
      };
    });
    table.update(rows, (n) => n.Node);
    setText(count, `${rows.length} nodes`);
  };
  watch("catalog/nodes", signal, (list) => { nodes = list; render(); });
  watch("health/state/any", signal, (list) => { checks = list; render(); });
}

function nodePage(signal, nodeName) {
  const facts = h("dl", { class: "facts" });
  const checks = new KeyedTable(`Checks of ${nodeName}`, [
    { label: "Check", width: "22%", render: (td, c) => setText(td, c.Name || c.CheckID) },
    { label: "Service", width: "16%", render: (td, c) => (c.ServiceName
      ? setLink(td, `${datacenter}/services/${encodeURIComponent(c.ServiceName)}`, c.ServiceName)
      : setText(td, "(node)")) },
    { label: "Health", width: "9rem", render: (td, c, tr) => { const s = worst([c.Status]); setStatus(td, c.Status); rowHealth(tr, s); } },
    { label: "Output", render: (td, c) => setContent(td, c.Output, () => [h("span", { class: "output", text: c.Output })]) },
  ]);
  const services = new KeyedTable(`Services on ${nodeName}`, [
    { label: "Service", width: "30%", render: (td, s) => setLink(td, `${datacenter}/services/${encodeURIComponent(s.Service)}`, s.Service) },
    { label: "ID", width: "30%", render: (td, s) => setText(td, s.ID) },
    { label: "Port", width: "7rem", render: (td, s) => setText(td, s.Port) },
    { label: "Tags", render: (td, s) => { td.className = "tags"; setText(td, (s.Tags || []).join(", ")); } },
  ]);
  main.replaceChildren(heading(nodeName), facts,
    h("h2", { text: "Checks" }), checks.el,
    h("h2", { text: "Services" }), services.el);
  watch(`catalog/node/${encodeURIComponent(nodeName)}`, signal, (node) => {
    if (!node) {
      setContent(facts, "missing", () => [h("dt", { text: "Node" }), h("dd", { text: "not in the catalog" })]);
      services.update([], () => "");
      return;
    }
    const n = node.Node;
    setContent(facts, `${n.Address}\u0000${n.Datacenter}\u0000${JSON.stringify(n.Meta || {})}`, () => [
      h("dt", { text: "Address" }), h("dd", { text: n.Address }),
      h("dt", { text: "Datacenter" }), h("dd", { text: n.Datacenter }),
      ...Object.entries(n.Meta || {}).flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]),
    ]);
    const list = Object.values(node.Services || {}).sort((a, b) => a.ID.localeCompare(b.ID));
    services.update(list, (s) => s.ID);
  });
  watch(`health/node/${encodeURIComponent(nodeName)}`, signal, (list) => {
    checks.update(list, (c) => c.CheckID);
  });
}

function serversPage(signal) {
  const facts = h("dl", { class: "facts" });
  const table = new KeyedTable("Servers", [
    { label: "Server", width: "20%", render: (td, s) => setText(td, s.Node) },
    { label: "Address", width: "20%", render: (td, s) => setText(td, s.Address) },
    { label: "Role", width: "10rem", render: (td, s) => setText(td, s.Leader ? "leader" : s.Voter ? "follower" : "non-voter") },
    { label: "Health", width: "9rem", render: (td, s, tr) => { const st = s.healthy === undefined ? "warning" : s.healthy ? "passing" : "critical"; setStatus(td, st); rowHealth(tr, st); } },
    { label: "Last contact", render: (td, s) => setText(td, s.lastContact || "") },
  ]);
  main.replaceChildren(heading("Servers"), facts, h("h2", { text: "Raft peers" }), table.el);
  let config = null;
  let health = null;
  const render = () => {
    if (!config) return;
    const byId = new Map(((health && health.Servers) || []).map((s) => [s.ID, s]));
    table.update(config.Servers.map((s) => {
      const hs = byId.get(s.ID);
      return { ...s, healthy: hs ? hs.Healthy : undefined, lastContact: hs ? hs.LastContact : "" };
    }), (s) => s.ID);
    const leader = config.Servers.find((s) => s.Leader);
    const text = [
      ["Leader", leader ? `${leader.Node} (${leader.Address})` : "none"],
      ["Cluster healthy", health ? (health.Healthy ? "yes" : "no") : "unknown"],
      ["Failure tolerance", health ? String(health.FailureTolerance) : "unknown"],
    ];
    setContent(facts, JSON.stringify(text), () => text.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
  };
  poll("operator/raft/configuration", signal, (data, error) => {
    if (error) announce(`Raft configuration: ${error}`, true);
    else { config = data; render(); }
  });
  poll("operator/autopilot/health", signal, (data) => { health = data; render(); });
}

// ---- routing ----

function route() {
  if (page) page.abort();
  page = new AbortController();
  const rest = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : "";
  const parts = rest.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0 || parts[0] !== datacenter && parts.length === 1) {
    history.replaceState(null, "", `${base}${datacenter}/services`);
    return route();
  }
  const [, section = "services", name] = parts;
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.setAttribute("href", `${base}${datacenter}/${a.dataset.nav}`);
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  announce("");
  const signal = page.signal;
  if (section === "services" && name) servicePage(signal, name);
  else if (section === "services") servicesPage(signal);
  else if (section === "nodes" && name) nodePage(signal, name);
  else if (section === "nodes") nodesPage(signal);
  else if (section === "servers") serversPage(signal);
  else main.replaceChildren(heading("Not found"), h("p", { text: "There is no such page." }));
  document.body.dataset.page = name ? `${section}/${name}` : section;
  document.title = `${name || section} - Shoal`;
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[href]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(base) || url.hash) return;
  e.preventDefault();
  if (url.pathname !== location.pathname) history.pushState(null, "", url.pathname);
  route();
  main.querySelector("h1")?.focus();
});
window.addEventListener("popstate", route);

async function start() {
  try {
    const self = await (await fetch("/v1/agent/self")).json();
    datacenter = self.Config.Datacenter;
  } catch (e) {
    announce(`Cannot reach the agent (${e.message}).`, true);
    return;
  }
  setText(document.getElementById("dc"), `Datacenter ${datacenter}`);
  const rest = location.pathname.slice(base.length).split("/").filter(Boolean);
  if (rest.length > 1) datacenter = decodeURIComponent(rest[0]);
  route();
}

start();
