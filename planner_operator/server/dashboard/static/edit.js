/* planner-operator: the Planner dashboard's edit dialogs. Plain JavaScript, no build, no CDN.

   A save is a change to the agent file, never to the state: every dialog builds the job or
   trigger as the file holds it, asks the edits API for a dry run (?dry_run=1: the diff and the
   plan, computed by the same code as `reconcile --dry-run`), and only then saves it against the
   revision the dialog was opened at (?base=). A 409 conflict shows the newer revision and keeps
   the form filled. Previews while typing (the schedule in words and its next fires, the
   template's variables) come from GET /api/forms/*, so the page never guesses what the
   operator accepts. The pages work without this script; it only reveals the edit buttons. */
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("edit-data")?.textContent || "null");
  if (!data) return;
  const API = "/api";
  const SLUG = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
  let catalog = null;
  let opener = null;

  // -- small helpers -------------------------------------------------------------------------
  const $ = (root, role) => root.querySelector(`[data-role="${role}"]`);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) node.append(child);
    return node;
  };
  const debounce = (fn, ms = 250) => {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  };
  const seg = (s) => encodeURIComponent(s);
  async function call(method, path, body) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let json = null;
    try { json = await response.json(); } catch (_) { json = null; }
    return { status: response.status, ok: response.ok, json };
  }
  const message = (json) => {
    if (!json) return "the server gave no answer";
    if (typeof json.detail === "string") return json.detail;
    if (Array.isArray(json.detail)) {
      return json.detail.map((e) => `${(e.loc || []).slice(1).join(".") || "body"}: ${e.msg}` +
        (e.hint ? ` (${e.hint})` : "")).join("; ");
    }
    return JSON.stringify(json);
  };
  async function loadCatalog() {
    if (catalog) return catalog;
    const got = await call("GET", `${API}/forms/catalog`);
    if (!got.ok) throw new Error(message(got.json));
    catalog = got.json;
    const zones = document.querySelector('[data-role="timezones"]');
    if (zones && !zones.children.length) {
      for (const z of catalog.timezones) zones.append(el("option", { value: z }));
    }
    return catalog;
  }
  const agentOf = (id) => data.agents.find((a) => a.id === id) || { id, name: id, timezone: null };

  // -- opening and closing -------------------------------------------------------------------
  function show(dialog) {
    opener = document.activeElement;
    if (!dialog.open) dialog.showModal();
    const first = dialog.querySelector("input:not([type=hidden]):not([disabled]), select, textarea");
    if (first) first.focus();
  }
  for (const dialog of document.querySelectorAll("dialog.edit")) {
    dialog.addEventListener("close", () => { if (opener && opener.focus) opener.focus(); });
    for (const b of dialog.querySelectorAll('[data-role="close"]')) {
      b.addEventListener("click", () => dialog.close());
    }
  }

  // -- the outcome panel: preview, saved, refused ---------------------------------------------
  function resetOutcome(form) {
    const box = $(form, "outcome");
    box.hidden = true;
    for (const r of ["outcome-detail", "outcome-plan", "outcome-diff", "outcome-markdown", "conflict"]) {
      $(box, r).textContent = "";
    }
    $(box, "outcome-link").hidden = true;
    $(box, "conflict").hidden = true;
    $(box, "reload").hidden = true;
    const save = $(form, "save");
    if (save) save.disabled = true;
  }
  function showAnswer(form, json, saved) {
    const box = $(form, "outcome");
    box.hidden = false;
    $(box, "outcome-title").textContent = saved ? "Saved" : "Preview: nothing written yet";
    $(box, "outcome-detail").textContent = json.detail;
    $(box, "outcome-plan").textContent = `Plan: ${json.summary}`;
    $(box, "outcome-markdown").textContent = json.plan_markdown;
    $(box, "outcome-diff").textContent = json.diff || "(no change to the file)";
    const link = $(box, "outcome-link");
    link.replaceChildren();
    if (saved) {
      if (json.pull_request) {
        link.append("Pull request: ", el("a", { href: json.pull_request.url, class: "pr-link",
          text: `#${json.pull_request.number}` }), ` on branch ${json.pull_request.branch}`);
      } else if (json.commit) {
        link.append(el("span", { class: "commit", text: `Commit ${json.commit.slice(0, 12)}` }),
          json.branch ? ` on branch ${json.branch}` : "");
      } else {
        link.append(json.file);
      }
      link.hidden = false;
    }
    box.scrollIntoView({ block: "nearest" });
  }
  function showRefusal(form, got) {
    const box = $(form, "outcome");
    box.hidden = false;
    $(box, "outcome-title").textContent = got.status === 409 && got.json?.reason === "conflict"
      ? "The file changed since you opened it" : "Not saved";
    const conflict = $(box, "conflict");
    let text = message(got.json);
    if (got.json?.current_revision) text += ` (newer revision: ${got.json.current_revision})`;
    conflict.textContent = text;
    conflict.hidden = false;
    $(box, "reload").hidden = !(got.json && got.json.reason === "conflict");
    box.scrollIntoView({ block: "nearest" });
  }

  // A change is (method, path, body); preview it, then enable Save for exactly that change.
  function wireChange(form, build) {
    let pending = null;
    async function preview() {
      resetOutcome(form);
      let change;
      try { change = build(); } catch (err) { return showRefusal(form, { status: 0, json: { detail: err.message } }); }
      const url = (dry) => {
        const q = new URLSearchParams();
        if (dry) q.set("dry_run", "1");
        if (form.dataset.base) q.set("base", form.dataset.base);
        return q.toString() ? `${change.path}?${q}` : change.path;
      };
      const got = await call(change.method, url(true), change.body);
      if (!got.ok) return showRefusal(form, got);
      pending = { ...change, path: url(false) };
      showAnswer(form, got.json, false);
      const save = $(form, "save");
      save.disabled = false;
      save.focus();
    }
    form.addEventListener("submit", (event) => { event.preventDefault(); preview(); });
    form.addEventListener("input", () => { pending = null; const s = $(form, "save"); if (s) s.disabled = true; });
    $(form, "save").addEventListener("click", async () => {
      if (!pending) return;
      const save = $(form, "save");
      save.disabled = true;
      const got = await call(pending.method, pending.path, pending.body);
      pending = null;
      if (!got.ok) return showRefusal(form, got);
      form.dataset.base = got.json.revision;
      form.dataset.saved = "1";
      showAnswer(form, got.json, true);
    });
    return preview;
  }

  // -- the action fieldset (both dialogs) ----------------------------------------------------
  function actionOf(form) {
    return form.querySelector('input[type=radio][name$="-action"]:checked').value;
  }
  function syncAction(form) {
    const chat = actionOf(form) === "chat";
    form.querySelector(".if-chat").hidden = !chat;
    form.querySelector(".if-workflow").hidden = chat;
  }
  function fillWorkflows(form, current) {
    const select = $(form, "workflows");
    select.replaceChildren();
    const ids = [...catalog.workflows];
    if (current && !ids.includes(current)) ids.push(current);
    for (const id of ids) select.append(el("option", { value: id, text: id }));
    if (current) select.value = current;
  }
  function setAction(form, action) {
    const kind = action && action.workflow ? "workflow" : "chat";
    form.querySelector(`input[type=radio][value="${kind}"]`).checked = true;
    form.elements.template.value = action?.chat?.template || "";
    fillWorkflows(form, action?.workflow?.id);
    form.elements.input.value = JSON.stringify(action?.workflow?.input || {}, null, 2);
    syncAction(form);
  }
  function buildAction(form, original) {
    if (actionOf(form) === "chat") {
      const chat = { ...(original?.chat || {}), template: form.elements.template.value };
      if (!chat.template.trim()) throw new Error("the message template is empty");
      return { chat };
    }
    let input;
    try { input = JSON.parse(form.elements.input.value || "{}"); } catch (err) {
      throw new Error(`workflow input is not JSON: ${err.message}`);
    }
    const workflow = { id: form.elements.workflow.value };
    if (input && (typeof input !== "object" || Object.keys(input).length)) workflow.input = input;
    return { workflow };
  }
  function checkInput(form) {
    const list = $(form, "input-problems");
    list.replaceChildren();
    try { JSON.parse(form.elements.input.value || "{}"); } catch (err) {
      list.append(el("li", { text: `not JSON yet: ${err.message}` }));
    }
  }
  const checkTemplate = debounce(async (form, kind, event, agentVars, actionVars) => {
    if (actionOf(form) !== "chat") return;
    const q = new URLSearchParams({ template: form.elements.template.value, kind,
      agent_variables: agentVars.join(","), action_variables: actionVars.join(",") });
    if (event) q.set("event", event);
    const got = await call("GET", `${API}/forms/template?${q}`);
    const list = $(form, "template-problems");
    const vars = $(form, "variables");
    list.replaceChildren();
    if (!got.ok) { list.append(el("li", { text: message(got.json) })); return; }
    const names = got.json.available.map((v) => `{${v.name}}`);
    vars.textContent = got.json.checked
      ? `Variables available: ${names.join(" ") || "none"}`
      : "Variables: the event's payload fields (not known in advance for this source)" +
        (names.length ? `, and ${names.join(" ")}` : "");
    for (const p of got.json.problems) {
      list.append(el("li", { class: "problem", text: p.message + (p.hint ? ` — ${p.hint}` : "") }));
    }
  });

  // -- per-dialog state: which agent, which item, the file it was opened at ------------------
  async function openSource(form, agent) {
    const got = await call("GET", `${API}/agents/${seg(agent)}/source`);
    if (!got.ok) throw new Error(message(got.json));
    form.dataset.base = got.json.revision;
    form.dataset.file = got.json.file;
    return got.json;
  }
  function fillAgents(form, agent, fixed) {
    const select = $(form, "agents");
    select.replaceChildren();
    for (const a of data.agents) select.append(el("option", { value: a.id, text: `${a.name} (${a.id})` }));
    if (agent && !data.agents.some((a) => a.id === agent)) select.append(el("option", { value: agent, text: agent }));
    if (agent) select.value = agent;
    select.disabled = Boolean(fixed);
  }
  const items = (content, kind) => (content?.planner?.[kind === "job" ? "jobs" : "triggers"]) || [];
  const agentVariables = (content) => Object.keys(content?.variables || {});

  // -- the job dialog -----------------------------------------------------------------------
  const jobDialog = document.getElementById("job-dialog");
  const jobForm = jobDialog?.querySelector("form");
  const PRESET = {
    hourly: /^(\d{1,2}) \* \* \* \*$/,
    daily: /^(\d{1,2}) (\d{1,2}) \* \* \*$/,
    weekdays: /^(\d{1,2}) (\d{1,2}) \* \* 1-5$/,
    weekly: /^(\d{1,2}) (\d{1,2}) \* \* ([0-6])$/,
    monthly: /^(\d{1,2}) (\d{1,2}) (\d{1,2}) \* \*$/,
  };
  const pad = (n) => String(n).padStart(2, "0");
  function cronOf(form) {
    const f = form.elements;
    const [h, m] = (f.time.value || "09:00").split(":").map((x) => Number(x));
    switch (f.preset.value) {
      case "hourly": return `${Number(f.minute.value || 0)} * * * *`;
      case "daily": return `${m} ${h} * * *`;
      case "weekdays": return `${m} ${h} * * 1-5`;
      case "weekly": return `${m} ${h} * * ${f.weekday.value}`;
      case "monthly": return `${m} ${h} ${Number(f.day.value || 1)} * *`;
      default: return f.cron.value.trim();
    }
  }
  function setSchedule(form, cron) {
    const f = form.elements;
    const text = (cron || "").trim().replace(/\s+/g, " ");
    for (const [preset, re] of Object.entries(PRESET)) {
      const m = re.exec(text);
      if (!m) continue;
      f.preset.value = preset;
      if (preset === "hourly") f.minute.value = m[1];
      else f.time.value = `${pad(m[2])}:${pad(m[1])}`;
      if (preset === "weekly") f.weekday.value = m[3];
      if (preset === "monthly") f.day.value = m[3];
      syncPreset(form);
      return;
    }
    f.preset.value = "custom";
    f.cron.value = text;
    syncPreset(form);
  }
  function syncPreset(form) {
    const preset = form.elements.preset.value;
    for (const box of form.querySelectorAll("[data-for]")) {
      box.hidden = !box.dataset.for.split(" ").includes(preset);
    }
    if (preset === "custom" && !form.elements.cron.value) form.elements.cron.value = "0 9 * * *";
  }
  const previewSchedule = debounce(async (form) => {
    const cron = cronOf(form);
    const zone = form.elements.timezone.value.trim() || "UTC";
    const text = $(form, "schedule-text");
    const fires = $(form, "fires");
    fires.replaceChildren();
    if (!cron) { text.textContent = "Enter a cron expression."; return; }
    const got = await call("GET", `${API}/forms/schedule?${new URLSearchParams({ schedule: cron, timezone: zone })}`);
    if (!got.ok) {
      text.textContent = message(got.json);
      text.classList.add("problem");
      return;
    }
    text.classList.remove("problem");
    text.textContent = `${got.json.text} (${got.json.schedule}), ${zone}. Next fires:`;
    for (const f of got.json.fires) {
      const at = new Date(f.at);
      const local = f.at.slice(0, 16).replace("T", " ");
      const day = at.toLocaleDateString("en-GB", { weekday: "short", timeZone: zone });
      const li = el("li", {}, el("time", { datetime: f.at, text: `${day} ${local} ${f.zone}` }));
      if (f.dst_day) li.append(" ", el("span", { class: "badge b-drifted dst", text: "DST change" }));
      if (f.note) li.append(" ", el("span", { class: "muted small", text: f.note }));
      fires.append(li);
    }
  });

  let jobState = { original: null, agentVars: [], agentZone: null };
  function jobChanged() {
    previewSchedule(jobForm);
    const vars = Object.keys(jobState.original?.action?.chat?.variables || {});
    checkTemplate(jobForm, "job", null, jobState.agentVars, vars);
    checkInput(jobForm);
  }
  async function openJob(agent, name, fixedAgent) {
    await loadCatalog();
    const form = jobForm;
    form.reset();
    delete form.dataset.saved;
    resetOutcome(form);
    fillAgents(form, agent || data.agents[0]?.id, fixedAgent || Boolean(name));
    const chosen = form.elements.agent.value;
    const source = await openSource(form, chosen);
    const original = name ? items(source.content, "job").find((j) => j.name === name) : null;
    if (name && !original) throw new Error(`job ${name} is not in ${source.file} any more: reload the page`);
    jobState = { original, agentVars: agentVariables(source.content), agentZone: source.content.timezone || "UTC" };
    $(form, "title").textContent = name ? `Edit job ${name}` : "Add job";
    $(form, "where").textContent = `${source.file} at ${source.revision.slice(0, 19)} · saving: ${modeText(source.mode)}`;
    form.elements.name.value = original?.name || "";
    form.elements.description.value = original?.description || "";
    form.elements.timezone.value = original?.timezone || jobState.agentZone;
    if (original) setSchedule(form, original.schedule); else { form.elements.preset.value = "daily"; syncPreset(form); }
    setAction(form, original?.action || { chat: { template: "" } });
    show(jobDialog);
    jobChanged();
  }
  function buildJob() {
    const f = jobForm.elements;
    const agent = f.agent.value;
    const name = f.name.value.trim();
    if (!SLUG.test(name)) throw new Error("name: lowercase letters, digits and dashes (e.g. morning-check)");
    const original = jobState.original;
    const job = { ...(original || {}), name, schedule: cronOf(jobForm) };
    const description = f.description.value.trim();
    if (description) job.description = description; else delete job.description;
    const zone = f.timezone.value.trim();
    if (zone && (zone !== jobState.agentZone || original?.timezone)) job.timezone = zone; else delete job.timezone;
    job.action = buildAction(jobForm, original?.action);
    const target = original ? original.name : name;
    return { method: original ? "PUT" : "POST", path: `${API}/agents/${seg(agent)}/jobs/${seg(target)}`, body: job };
  }
  if (jobForm) {
    wireChange(jobForm, buildJob);
    jobForm.addEventListener("input", jobChanged);
    jobForm.elements.preset.addEventListener("change", () => { syncPreset(jobForm); jobChanged(); });
    for (const r of jobForm.querySelectorAll('input[type=radio]')) r.addEventListener("change", () => { syncAction(jobForm); jobChanged(); });
    jobForm.elements.agent.addEventListener("change", () => openJob(jobForm.elements.agent.value, null, false).catch(fail));
    $(jobForm, "reload").addEventListener("click", () => reloadKeeping(jobForm));
  }

  // -- the trigger dialog -------------------------------------------------------------------
  const triggerDialog = document.getElementById("trigger-dialog");
  const triggerForm = triggerDialog?.querySelector("form");
  let triggerState = { original: null, agentVars: [], agent: null };
  const WEBHOOK = "__webhook__";
  function eventType(slug) {
    for (const t of catalog.toolkits) for (const e of t.events) if (e.slug === slug) return e;
    return null;
  }
  function fillToolkits(form, current) {
    const select = $(form, "toolkits");
    select.replaceChildren();
    for (const t of catalog.toolkits) select.append(el("option", { value: t.slug, text: t.slug }));
    if (current && !catalog.toolkits.some((t) => t.slug === current)) select.append(el("option", { value: current, text: current }));
    select.append(el("option", { value: WEBHOOK, text: "Signed webhook (any sender)" }));
    if (current) select.value = current;
    const schemes = $(form, "schemes");
    schemes.replaceChildren(...catalog.webhook_schemes.map((s) => el("option", { value: s, text: s })));
  }
  function fillEvents(form, current) {
    const toolkit = form.elements.source.value;
    const select = $(form, "events");
    select.replaceChildren();
    const found = catalog.toolkits.find((t) => t.slug === toolkit);
    for (const e of found ? found.events : []) select.append(el("option", { value: e.slug, text: `${e.name} (${e.slug})` }));
    if (current && !select.querySelector(`option[value="${CSS.escape(current)}"]`)) select.append(el("option", { value: current, text: current }));
    if (current) select.value = current;
  }
  function fillConfig(form, values) {
    const box = $(form, "config");
    box.querySelectorAll(".field, p").forEach((n) => n.remove());
    const type = eventType(form.elements.event.value);
    const props = type?.config?.properties || {};
    const required = new Set(type?.config?.required || []);
    const names = Object.keys(props);
    if (!names.length) { box.append(el("p", { class: "muted small", text: type ? "This event type takes no configuration." : "Unknown event type: configuration is checked by Composio." })); }
    for (const key of names) {
      const spec = props[key] || {};
      const id = `trigger-config-${key}`;
      const label = el("label", { for: id, text: `${spec.title || key}${required.has(key) ? " (required)" : ""}` });
      const value = values?.[key];
      let input;
      if (Array.isArray(spec.enum)) {
        input = el("select", { id });
        if (!required.has(key)) input.append(el("option", { value: "", text: "—" }));
        for (const v of spec.enum) input.append(el("option", { value: String(v), text: String(v) }));
        if (value !== undefined) input.value = String(value);
      } else if (spec.type === "boolean") {
        input = el("input", { id, type: "checkbox" });
        input.checked = value === undefined ? Boolean(spec.default) : Boolean(value);
      } else if (spec.type === "integer" || spec.type === "number") {
        input = el("input", { id, type: "number", step: spec.type === "integer" ? "1" : "any" });
        if (value !== undefined) input.value = String(value);
      } else if (spec.type === "array" || spec.type === "object") {
        input = el("textarea", { id, rows: "2", spellcheck: "false", placeholder: "JSON" });
        if (value !== undefined) input.value = JSON.stringify(value);
      } else {
        input = el("input", { id, autocomplete: "off" });
        if (value !== undefined) input.value = typeof value === "string" ? value : JSON.stringify(value);
      }
      input.dataset.key = key;
      input.dataset.type = spec.type || "string";
      if (required.has(key)) input.required = true;
      const help = spec.description ? el("p", { class: "muted small", text: spec.description }) : "";
      box.append(el("div", { class: "field" }, label, input, help));
    }
  }
  function readConfig(form, original) {
    const out = {};
    const known = new Set();
    for (const input of $(form, "config").querySelectorAll("[data-key]")) {
      const key = input.dataset.key;
      known.add(key);
      if (input.type === "checkbox") { if (input.checked || original?.[key] !== undefined) out[key] = input.checked; continue; }
      const raw = input.value.trim();
      if (!raw) continue;
      if (input.dataset.type === "integer" || input.dataset.type === "number") out[key] = Number(raw);
      else if (input.dataset.type === "array" || input.dataset.type === "object") {
        try { out[key] = JSON.parse(raw); } catch (err) { throw new Error(`config ${key}: not JSON (${err.message})`); }
      } else out[key] = raw;
    }
    for (const [k, v] of Object.entries(original || {})) if (!known.has(k)) out[k] = v;  // kept as in the file
    return out;
  }
  // the filter builder: rows of (field, operator, value) under all/any
  function addCondition(form, field = "", op = "equals", value = "") {
    const rows = $(form, "conditions");
    const n = rows.children.length + 1;
    const opSelect = el("select", { "aria-label": `Condition ${n} operator`, class: "op" });
    for (const o of catalog.operators) opSelect.append(el("option", { value: o, text: o }));
    opSelect.value = op;
    const row = el("div", { class: "condition row" },
      el("input", { class: "field-path", "aria-label": `Condition ${n} payload field`, placeholder: "sender", value: field, autocomplete: "off" }),
      opSelect,
      el("input", { class: "value", "aria-label": `Condition ${n} value`, value, autocomplete: "off",
        placeholder: "text, JSON, or a,b for in" }),
      el("button", { type: "button", class: "secondary remove", "aria-label": `Remove condition ${n}`, text: "Remove" }));
    row.querySelector(".remove").addEventListener("click", () => { row.remove(); form.dispatchEvent(new Event("input")); });
    rows.append(row);
    return row;
  }
  function conditionValue(op, raw) {
    if (op === "exists") return !/^(false|no|0)$/i.test(raw.trim());
    if (op === "contains") return raw;
    if (op === "in") {
      try { const parsed = JSON.parse(raw); if (Array.isArray(parsed)) return parsed; } catch (_) { /* a list */ }
      return raw.split(",").map((s) => s.trim()).filter(Boolean);
    }
    try { return JSON.parse(raw); } catch (_) { return raw; }
  }
  const shown = (v) => (typeof v === "string" ? v : Array.isArray(v) && v.every((x) => typeof x === "string") ? v.join(", ") : JSON.stringify(v));
  function simpleConditions(filter) {
    // {field: {op: v}, ...} (all) or {any: [{field: {op: v}}, ...]}; else null: kept as is
    const flat = (f) => Object.entries(f).every(([k, c]) => k !== "all" && k !== "any" && c && typeof c === "object" && Object.keys(c).length === 1);
    const rows = (f) => Object.entries(f).map(([k, c]) => [k, Object.keys(c)[0], Object.values(c)[0]]);
    if (!filter) return { match: "all", rows: [] };
    if (Object.keys(filter).length === 1 && Array.isArray(filter.any) && filter.any.every((f) => f && flat(f) && Object.keys(f).length === 1)) {
      return { match: "any", rows: filter.any.flatMap(rows) };
    }
    if (flat(filter)) return { match: "all", rows: rows(filter) };
    return null;
  }
  function setFilter(form, filter) {
    $(form, "conditions").replaceChildren();
    const simple = simpleConditions(filter);
    const note = $(form, "filter-note");
    triggerState.rawFilter = simple ? null : filter;
    note.hidden = Boolean(simple);
    note.textContent = simple ? "" : "This filter nests all/any deeper than the builder shows: it is kept as in the file (edit it in git).";
    form.querySelector(".filter [data-role=add-condition]").hidden = !simple;
    if (!simple) return;
    form.elements.match.value = simple.match;
    for (const [field, op, value] of simple.rows) addCondition(form, field, op, shown(value));
  }
  function readFilter(form) {
    if (triggerState.rawFilter) return triggerState.rawFilter;
    const conditions = [];
    for (const row of $(form, "conditions").querySelectorAll(".condition")) {
      const field = row.querySelector(".field-path").value.trim();
      if (!field) continue;
      const op = row.querySelector(".op").value;
      conditions.push({ [field]: { [op]: conditionValue(op, row.querySelector(".value").value) } });
    }
    if (!conditions.length) return null;
    if (form.elements.match.value === "any") return { any: conditions };
    return Object.assign({}, ...conditions);
  }
  function syncSource(form) {
    const webhook = form.elements.source.value === WEBHOOK;
    form.querySelector(".if-composio").hidden = webhook;
    form.querySelector(".if-webhook").hidden = !webhook;
    const name = form.elements.name.value.trim() || "<name>";
    const agent = form.elements.agent.value;
    const root = catalog.public_url || window.location.origin;
    $(form, "webhook-url").textContent = root + catalog.webhook_path.replace("{agent}", agent).replace("{trigger}", name);
  }
  function triggerChanged() {
    syncSource(triggerForm);
    const vars = Object.keys(triggerState.original?.action?.chat?.variables || {});
    const webhook = triggerForm.elements.source.value === WEBHOOK;
    checkTemplate(triggerForm, "trigger", webhook ? null : triggerForm.elements.event.value, triggerState.agentVars, vars);
    checkInput(triggerForm);
  }
  async function openTrigger(agent, name, fixedAgent) {
    await loadCatalog();
    const form = triggerForm;
    form.reset();
    delete form.dataset.saved;
    resetOutcome(form);
    fillAgents(form, agent || data.agents[0]?.id, fixedAgent || Boolean(name));
    const source = await openSource(form, form.elements.agent.value);
    const original = name ? items(source.content, "trigger").find((t) => t.name === name) : null;
    if (name && !original) throw new Error(`trigger ${name} is not in ${source.file} any more: reload the page`);
    triggerState = { original, agentVars: agentVariables(source.content), rawFilter: null };
    $(form, "title").textContent = name ? `Edit trigger ${name}` : "Add trigger";
    $(form, "where").textContent = `${source.file} at ${source.revision.slice(0, 19)} · saving: ${modeText(source.mode)}`;
    form.elements.name.value = original?.name || "";
    form.elements.description.value = original?.description || "";
    const accounts = new Set();
    for (const t of items(source.content, "trigger")) { if (t.connected_account) accounts.add(t.connected_account); if (t.user_id) accounts.add(t.user_id); }
    $(form, "accounts").replaceChildren(...[...accounts].map((a) => el("option", { value: a })));
    fillToolkits(form, original ? (original.webhook ? WEBHOOK : original.toolkit) : catalog.toolkits[0]?.slug);
    fillEvents(form, original?.event);
    fillConfig(form, original?.config);
    form.elements.account_kind.value = original?.user_id ? "user_id" : "connected_account";
    form.elements.account.value = original?.user_id || original?.connected_account || "";
    form.elements.secret_env.value = original?.webhook?.secret_env || "";
    form.elements.scheme.value = original?.webhook?.scheme || catalog.webhook_schemes[0];
    setFilter(form, original?.filter);
    setAction(form, original?.action || { chat: { template: "" } });
    show(triggerDialog);
    triggerChanged();
  }
  function buildTrigger() {
    const f = triggerForm.elements;
    const name = f.name.value.trim();
    if (!SLUG.test(name)) throw new Error("name: lowercase letters, digits and dashes (e.g. recruiter-email)");
    const original = triggerState.original;
    const t = { ...(original || {}), name };
    for (const k of ["toolkit", "event", "connected_account", "user_id", "config", "webhook", "filter"]) delete t[k];
    const description = f.description.value.trim();
    if (description) t.description = description; else delete t.description;
    if (f.source.value === WEBHOOK) {
      t.webhook = { secret_env: f.secret_env.value.trim(), scheme: f.scheme.value };
    } else {
      t.toolkit = f.source.value;
      t.event = f.event.value;
      const account = f.account.value.trim();
      if (account) t[f.account_kind.value] = account;
      const config = readConfig(triggerForm, original?.event === t.event ? original?.config : null);
      if (Object.keys(config).length) t.config = config;
    }
    const filter = readFilter(triggerForm);
    if (filter) t.filter = filter;
    t.action = buildAction(triggerForm, original?.action);
    const target = original ? original.name : name;
    return { method: original ? "PUT" : "POST", path: `${API}/agents/${seg(f.agent.value)}/triggers/${seg(target)}`, body: t };
  }
  if (triggerForm) {
    wireChange(triggerForm, buildTrigger);
    triggerForm.addEventListener("input", triggerChanged);
    triggerForm.elements.source.addEventListener("change", () => { fillEvents(triggerForm); fillConfig(triggerForm); triggerChanged(); });
    triggerForm.elements.event.addEventListener("change", () => { fillConfig(triggerForm); triggerChanged(); });
    for (const r of triggerForm.querySelectorAll('input[type=radio]')) r.addEventListener("change", () => { syncAction(triggerForm); triggerChanged(); });
    $(triggerForm, "add-condition").addEventListener("click", () => addCondition(triggerForm).querySelector("input").focus());
    triggerForm.elements.agent.addEventListener("change", () => openTrigger(triggerForm.elements.agent.value, null, false).catch(fail));
    $(triggerForm, "reload").addEventListener("click", () => reloadKeeping(triggerForm));
  }

  // -- new agent ----------------------------------------------------------------------------
  const agentDialog = document.getElementById("agent-dialog");
  const agentForm = agentDialog?.querySelector("form");
  if (agentForm) {
    wireChange(agentForm, () => {
      const f = agentForm.elements;
      const id = f.id.value.trim();
      if (!SLUG.test(id)) throw new Error("id: lowercase letters, digits and dashes (e.g. ops-agent)");
      const body = { id, name: f.name.value.trim() || id };
      if (f.description.value.trim()) body.description = f.description.value.trim();
      if (f.timezone.value.trim()) body.timezone = f.timezone.value.trim();
      return { method: "POST", path: `${API}/agents`, body };
    });
  }

  // -- pause / resume / delete: a preview, then Confirm --------------------------------------
  const changeDialog = document.getElementById("change-dialog");
  const changeForm = changeDialog?.querySelector("form");
  let changeBuild = null;
  const previewChange = changeForm ? wireChange(changeForm, () => changeBuild()) : null;
  if (changeForm) $(changeForm, "reload").addEventListener("click", () => openChange(changeForm.dataset.what, changeForm.dataset.kind2, changeForm.dataset.agent, changeForm.dataset.name).catch(fail));
  async function openChange(what, kind, agent, name) {
    await loadCatalog();
    const form = changeForm;
    resetOutcome(form);
    Object.assign(form.dataset, { what, kind2: kind, agent, name });
    const source = await openSource(form, agent);
    const item = items(source.content, kind).find((i) => i.name === name);
    if (!item) throw new Error(`${kind} ${name} is not in ${source.file} any more: reload the page`);
    const path = `${API}/agents/${seg(agent)}/${kind}s/${seg(name)}`;
    let title;
    if (what === "delete") {
      title = `Delete ${kind} ${name}`;
      changeBuild = () => ({ method: "DELETE", path, body: undefined });
    } else {
      const enabled = item.enabled === false;
      title = `${enabled ? "Resume" : "Pause"} ${kind} ${name}`;
      changeBuild = () => ({ method: "PUT", path, body: { ...item, enabled } });
    }
    $(form, "title").textContent = title;
    $(form, "save").textContent = title.split(" ")[0];
    $(form, "where").textContent = `${source.file} at ${source.revision.slice(0, 19)} · saving: ${modeText(source.mode)}`;
    show(changeDialog);
    await previewChange();
  }

  // -- a conflict: read the file again, keep what the person typed ---------------------------
  async function reloadKeeping(form) {
    const source = await openSource(form, form.elements.agent.value);
    resetOutcome(form);
    $(form, "where").textContent = `${source.file} at ${source.revision.slice(0, 19)} (reloaded; your edits are kept) · saving: ${modeText(source.mode)}`;
  }
  function modeText(mode) {
    return { pr: "a branch and a pull request", commit: "a commit to the watched branch",
      worktree: "the file in the work tree" }[mode] || mode;
  }
  function fail(err) {
    const box = document.getElementById("edit-error");
    box.textContent = `Cannot open the editor: ${err.message}`;
    box.hidden = false;
    box.focus();
  }

  // -- wire the page's buttons ----------------------------------------------------------------
  const banner = el("p", { id: "edit-error", class: "flash error", role: "alert", tabindex: "-1", hidden: true });
  document.querySelector("main")?.prepend(banner);
  for (const box of document.querySelectorAll(".edit-actions, .edit-bar")) box.hidden = false;
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-edit]");
    if (!button) return;
    const holder = button.closest("[data-kind]");
    const kind = holder.dataset.kind;
    const agent = holder.dataset.agent;
    const name = holder.dataset.name;
    const what = button.dataset.edit;
    let opening;
    if (what === "new-agent") { agentForm.reset(); resetOutcome(agentForm); delete agentForm.dataset.base; opening = loadCatalog().then(() => show(agentDialog)); }
    else if (what === "add") opening = kind === "job" ? openJob(agent, null, Boolean(agent)) : openTrigger(agent, null, Boolean(agent));
    else if (what === "edit") opening = kind === "job" ? openJob(agent, name, true) : openTrigger(agent, name, true);
    else opening = openChange(what, kind, agent, name);
    opener = button;
    opening.catch(fail);
  });
})();
