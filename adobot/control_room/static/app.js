// The control room's page: plain JavaScript over the JSON API, no build step. Everything shown
// is set as text (never as HTML), and the API token lives in this page's memory only.
"use strict";

const API = "/api/v1";
const state = { token: null, me: null, connections: [], editing: null, catalogue: null,
  session: 0, requests: new AbortController() };
const $ = (id) => document.getElementById(id);

// The naming rules, as the API checks them (adobot.credentials.connections).
const CONNECTION_NAME = /^[A-Za-z][A-Za-z0-9-]{2,31}$/;
const ORGANIZATION_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$/;

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function say(text) { $("status").textContent = text; }

class ApiError extends Error {
  constructor(status, error) {
    super(error.message);
    this.status = status;
    this.error = error;
  }
  explain() { return this.error.hint ? `${this.error.message}. ${this.error.hint}` : this.error.message; }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  const options = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  // An answer that arrives after sign-out is never shown: it belongs to the last person.
  const session = state.session;
  const forgotten = () => new Promise(() => {});
  options.signal = state.requests.signal;
  let answer, data;
  try {
    answer = await fetch(API + path, options);
    data = answer.status === 204 ? null : await answer.json().catch(() => ({}));
  } catch (failure) {
    if (session !== state.session) return forgotten();
    throw failure;
  }
  if (session !== state.session) return forgotten();
  if (answer.status === 204) return null;
  if (!answer.ok) {
    if (answer.status === 401 && path !== "/me") {
      signOut("Your token is no longer valid: sign in again.");
      return forgotten();
    }
    throw new ApiError(answer.status, data.error || { message: `HTTP ${answer.status}` });
  }
  return data;
}

// --- signing in ---------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const field = $("token");
  state.token = field.value.trim();
  field.value = "";
  $("sign-in-error").textContent = "";
  if (!state.token) {
    $("sign-in-error").textContent = "Give your API token.";
    field.focus();
    return;
  }
  try {
    state.me = await api("GET", "/me");
  } catch (failure) {
    state.token = null;
    $("sign-in-error").textContent = failure instanceof ApiError ? failure.explain() : String(failure);
    field.focus();
    return;
  }
  if (state.me.role === "runner") {
    state.token = state.me = null;
    $("sign-in-error").textContent = "A runner's token fetches credentials for runs: sign in with a person's token.";
    return;
  }
  document.body.classList.toggle("administrator", state.me.role === "administrator");
  $("who").textContent = `${state.me.name} (${state.me.role === "administrator" ? "Administrator" : "Standard user"})`;
  $("sign-in").hidden = true;
  $("nav").hidden = $("account").hidden = false;
  say(`Signed in as ${state.me.name}.`);
  show(location.hash.slice(1) || "connections");
}

// Sign-out forgets everything the last person typed or saw: the next person at this screen
// finds the page as it loaded, and answers still on their way are dropped (see api()).
function signOut(message) {
  state.token = state.me = state.catalogue = state.editing = null;
  state.connections = [];
  state.session += 1;
  state.requests.abort();
  state.requests = new AbortController();
  document.body.classList.remove("administrator");
  for (const id of ["connections", "actions", "check", "nav", "account", "connection-form",
                    "no-connections"]) $(id).hidden = true;
  for (const form of document.querySelectorAll("form")) form.reset();
  for (const error of document.querySelectorAll(".error")) error.textContent = "";
  for (const id of ["who", "action-list", "check-result", "run-result"]) $(id).replaceChildren();
  $("connection-table").querySelector("tbody").replaceChildren();
  $("action-detail").replaceChildren(el("p", { text: ACTION_PROMPT }));
  fillConnectionForm(null);
  selectionChanged();
  $("sign-in").hidden = false;
  say(message || "Signed out.");
  $("token").focus();
}

const ACTION_PROMPT = "Choose an action to see its inputs, outputs and errors, and to make a step for a bot.";
const VIEWS = { connections: loadConnections, actions: loadCatalogue, check: () => {} };

function show(view) {
  if (!state.token) return;
  if (!(view in VIEWS)) view = "connections";
  for (const name of Object.keys(VIEWS)) $(name).hidden = name !== view;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.hash === `#${view}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  VIEWS[view]();
  $(`${view}-title`).focus?.();
}

// --- connections --------------------------------------------------------------------------

const STATES = { connected: "Connected", failed: "Failed", unchecked: "Not checked yet" };
const METHODS = { pat: "Personal access token", service_principal: "Service principal" };

async function loadConnections() {
  try {
    state.connections = (await api("GET", "/connections")).connections;
  } catch (failure) {
    say(failure.message);
    return;
  }
  const admin = state.me.role === "administrator";
  const body = $("connection-table").querySelector("tbody");
  body.replaceChildren(...state.connections.map((connection) => {
    const status = connection.status;
    const said = status.state === "connected" ? `Connected as ${status.user}`
      : status.state === "failed" ? `Failed: ${status.reason}` : STATES[status.state];
    return el("tr", { "data-name": connection.name },
      admin ? el("td", { class: "select" }, el("input", {
        type: "checkbox", id: `select-${connection.name}`, value: connection.name,
        "aria-label": `Select ${connection.name}`, onchange: selectionChanged })) : null,
      el("th", { scope: "row", "data-label": "Name", text: connection.name }),
      el("td", { "data-label": "Organization", text: connection.organization_url }),
      el("td", { "data-label": "Project", text: connection.project || "—" }),
      el("td", { "data-label": "Method", text: METHODS[connection.authentication_method] }),
      el("td", { "data-label": "Status", class: `state-${status.state}`, text: said }),
      el("td", { "data-label": "Last checked", text: status.checked_at || "never" }),
      admin ? el("td", { class: "row-actions" },
        el("button", { type: "button", text: "Test", "aria-label": `Test ${connection.name}`,
                       onclick: () => testConnection(connection.name) }),
        el("button", { type: "button", text: "Edit", "aria-label": `Edit ${connection.name}`,
                       onclick: () => openConnectionForm(connection) }),
        el("button", { type: "button", text: "Delete", class: "danger",
                       "aria-label": `Delete ${connection.name}`,
                       onclick: () => removeConnections([connection.name]) })) : null);
  }));
  $("no-connections").hidden = state.connections.length > 0;
  selectionChanged();
}

function selected() {
  return [...document.querySelectorAll("#connection-table tbody input[type=checkbox]:checked")]
    .map((box) => box.value);
}

function selectionChanged() {
  const count = selected().length;
  $("remove-selected").disabled = count === 0;
  $("remove-selected").textContent = count ? `Remove selected (${count})` : "Remove selected";
}

async function removeConnections(names) {
  const what = names.length === 1 ? `connection ${names[0]}` : `${names.length} connections (${names.join(", ")})`;
  if (!window.confirm(`Delete ${what}? Bots that name ${names.length === 1 ? "it" : "them"} will fail to connect.`)) return;
  try {
    if (names.length === 1) await api("DELETE", `/connections/${encodeURIComponent(names[0])}`);
    else await api("DELETE", `/connections?${names.map((n) => `name=${encodeURIComponent(n)}`).join("&")}`);
    say(`Deleted ${what}.`);
  } catch (failure) {
    say(failure instanceof ApiError ? failure.explain() : String(failure));
  }
  await loadConnections();
}

async function testConnection(name) {
  say(`Testing ${name}…`);
  try {
    const tested = await api("POST", `/connections/${encodeURIComponent(name)}/test`);
    say(tested.status.state === "connected" ? `${name} works: connected as ${tested.status.user}.`
      : `${name} failed its test: ${tested.status.reason}`);
  } catch (failure) {
    say(failure instanceof ApiError ? failure.explain() : String(failure));
  }
  await loadConnections();
}

function methodChanged() {
  const app = $("c-method").value === "service_principal";
  for (const field of document.querySelectorAll(".app-only")) field.hidden = !app;
  const what = app ? "client secret" : "personal access token";
  $("c-secret-label").textContent = state.editing ? `New ${what}` : what[0].toUpperCase() + what.slice(1);
}

function openConnectionForm(connection) {
  fillConnectionForm(connection);
  $("connection-form").hidden = false;
  (connection ? $("c-organization") : $("c-name")).focus();
}

// The form as an add (connection: null) or an edit of a connection, its secret always empty.
function fillConnectionForm(connection) {
  const form = $("connection-form");
  form.reset();
  state.editing = connection || null;
  $("connection-error").textContent = "";
  for (const id of ["c-name-error", "c-organization-error"]) $(id).textContent = "";
  $("connection-form-title").textContent = connection ? `Edit ${connection.name}` : "Add a connection";
  $("c-name").readOnly = Boolean(connection);
  $("c-method").disabled = Boolean(connection);
  if (connection) {  // everything but the secret, which is never sent to a page
    $("c-name").value = connection.name;
    $("c-organization").value = connection.organization;
    $("c-project").value = connection.project || "";
    $("c-method").value = connection.authentication_method;
    $("c-tenant").value = connection.tenant_id || "";
    $("c-client").value = connection.client_id || "";
  }
  $("c-secret-help").textContent = connection
    ? "Leave empty to keep the saved one (it is never shown). A new one is tested before it is saved."
    : "Tested before it is saved; it can never be read back.";
  methodChanged();
}

function closeConnectionForm() {
  $("connection-form").reset();
  $("connection-form").hidden = true;
  state.editing = null;
  $("add-connection").focus();
}

// Each rule says what the API would say, as the person types.
function checkName() {
  const value = $("c-name").value;
  const wrong = value && !CONNECTION_NAME.test(value)
    ? `connection name '${value}' is not valid. Use 3-32 letters, digits and hyphens, starting with a letter.` : "";
  return showProblem("c-name", wrong);
}

function checkOrganization() {
  const value = $("c-organization").value.trim();
  let wrong = "";
  if (value.includes("://")) {
    if (!/^https?:\/\/[^\s/]+\/?/.test(value)) wrong = `organization '${value}' is not a valid organization URL. Use https://{organization}.visualstudio.com or https://host/{collection}.`;
  } else if (value && !ORGANIZATION_NAME.test(value)) {
    wrong = `organization '${value}' is not a valid organization name. Give the name after https://dev.azure.com/ (1-50 letters, digits and hyphens, starting with a letter or digit, no trailing hyphen).`;
  }
  return showProblem("c-organization", wrong);
}

function showProblem(id, problem) {
  $(`${id}-error`).textContent = problem;
  $(id).setAttribute("aria-invalid", problem ? "true" : "false");
  return !problem;
}

async function saveConnection(event) {
  event.preventDefault();
  const error = $("connection-error");
  error.textContent = "";
  const value = (id) => $(id).value.trim();
  const required = [["c-name", "name"], ["c-organization", "organization"]]
    .filter(([id]) => !value(id)).map(([, name]) => name);
  if (!state.editing && !value("c-secret")) required.push($("c-method").value === "pat" ? "pat" : "client_secret");
  if (required.length) {
    error.textContent = `${required.join(", ")} ${required.length === 1 ? "is" : "are"} required.`;
    return;
  }
  if (!checkName() || !checkOrganization()) {
    error.textContent = "Correct the fields marked above.";
    return;
  }
  const secretField = $("c-method").value === "pat" ? "pat" : "client_secret";
  const body = { organization: value("c-organization"), project: value("c-project") };
  if (value("c-secret")) body[secretField] = value("c-secret");
  if ($("c-method").value === "service_principal") {
    body.tenant_id = value("c-tenant") || undefined;
    body.client_id = value("c-client") || undefined;
  }
  const saving = $("connection-save");
  saving.disabled = true;
  say("Testing the connection…");
  try {
    let saved;
    if (state.editing) {
      if (body.organization === state.editing.organization) delete body.organization;
      saved = await api("PATCH", `/connections/${encodeURIComponent(state.editing.name)}`, body);
    } else {
      saved = await api("POST", "/connections", { name: value("c-name"),
        authentication_method: $("c-method").value, ...body, project: body.project || null });
    }
    closeConnectionForm();
    say(`Saved ${saved.name}: connected as ${saved.status.user}.`);
    await loadConnections();
  } catch (failure) {
    $("c-secret").value = "";
    error.textContent = failure instanceof ApiError ? failure.explain() : String(failure);
    say("Nothing was saved.");
  } finally {
    saving.disabled = false;
  }
}

// --- the action catalogue -----------------------------------------------------------------

async function loadCatalogue() {
  if (state.catalogue) return;
  try {
    state.catalogue = await api("GET", "/actions");
  } catch (failure) {
    say(failure.message);
    return;
  }
  $("action-list").replaceChildren(...state.catalogue.groups.map((group) => el("div", { class: "group" },
    el("h3", { text: group.name }),
    el("ul", {}, ...group.actions.map((action) => el("li", {},
      el("button", { type: "button", class: "link", "data-action": action.name,
                     text: action.label || action.name, onclick: () => showAction(action) })))))));
}

function resolve(schema, root) {
  if (schema && schema.$ref) return resolve(root.$defs[schema.$ref.split("/").pop()], root);
  return schema || {};
}

// The non-null alternatives of a schema (Optional[...] is anyOf [..., null]).
function options(schema, root) {
  const resolved = resolve(schema, root);
  if (!resolved.anyOf) return [resolved];
  return resolved.anyOf.map((option) => resolve(option, root)).filter((option) => option.type !== "null");
}

function describe(schema, root) {
  const parts = options(schema, root).map((option) => {
    if (option.enum) return option.enum.map((v) => JSON.stringify(v)).join(" | ");
    if (option.type === "array") return `list of ${describe(option.items || {}, root)}`;
    if (option.type === "object" && option.properties) return `{${Object.keys(option.properties).join(", ")}}`;
    return option.type || "any";
  });
  return parts.join(" or ");
}

function showAction(action) {
  for (const button of document.querySelectorAll("#action-list button")) {
    if (button.dataset.action === action.name) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  const inputs = action.inputs;
  const required = new Set(inputs.required || []);
  const form = el("form", { id: "action-form", novalidate: true, "aria-label": `Inputs of ${action.name}`,
                            onsubmit: (event) => { event.preventDefault(); makeStep(action); } });
  for (const [name, schema] of Object.entries(inputs.properties || {})) {
    form.append(inputField(name, schema, inputs, required.has(name)));
  }
  form.append(el("p", { id: "step-error", class: "error", role: "alert" }),
              el("div", { class: "buttons" }, el("button", { type: "submit", text: "Make the step" })));
  const outputs = Object.entries(action.outputs.properties || {});
  $("action-detail").replaceChildren(
    el("h3", { id: "action-title", tabindex: "-1", text: `${action.label} (${action.name})` }),
    el("p", { text: action.description }),
    el("p", { class: "help", text: `${action.read_only ? "Reads only" : "Changes things"}; ${action.idempotent ? "safe to repeat" : "not safe to repeat blindly"}.` }),
    el("h4", { text: "Inputs" }), form,
    el("div", { id: "step-output", hidden: true },
      el("label", { for: "step-yaml", text: "The step, to paste under steps: in a bot" }),
      el("textarea", { id: "step-yaml", rows: "8", readonly: true, spellcheck: "false" })),
    el("h4", { text: "Outputs" }),
    outputs.length ? el("dl", {}, ...outputs.flatMap(([name, schema]) => [
      el("dt", {}, el("code", { text: name }), ` — ${describe(schema, action.outputs)}`),
      el("dd", { text: resolve(schema, action.outputs).description || "" })])) : el("p", { text: "None." }),
    el("h4", { text: "Errors" }),
    el("dl", {}, ...action.errors.flatMap((error) => [el("dt", {}, el("code", { text: error.code })),
                                                    el("dd", { text: error.when })])));
  $("action-title").focus();
}

function inputField(name, schema, root, isRequired) {
  const id = `in-${name}`;
  const resolved = resolve(schema, root);
  const label = el("label", { for: id }, el("code", { text: name }),
                   isRequired ? el("span", { class: "required", text: " (required)" }) : null);
  const help = el("p", { id: `${id}-help`, class: "help", text: [resolved.description,
    resolved.default !== undefined && resolved.default !== null ? `Default: ${JSON.stringify(resolved.default)}.` : ""].filter(Boolean).join(" ") });
  const problem = el("p", { id: `${id}-error`, class: "error", "aria-live": "polite" });
  const described = `${id}-help ${id}-error`;
  if (resolved["x-credential"]) return credentialField(name, resolved, isRequired, help);
  const choices = options(schema, root);
  const single = choices.length === 1 ? choices[0] : null;
  let control;
  if (single && single.enum) {
    control = el("select", { id, name, "aria-describedby": described },
      isRequired ? null : el("option", { value: "", text: resolved.default != null ? `(default: ${resolved.default})` : "(not given)" }),
      ...single.enum.map((value) => el("option", { value: String(value), text: String(value) })));
  } else if (single && single.type === "boolean") {
    control = el("select", { id, name, "aria-describedby": described, "data-type": "boolean" },
      el("option", { value: "", text: resolved.default != null ? `(default: ${resolved.default})` : "(not given)" }),
      el("option", { value: "true", text: "true" }), el("option", { value: "false", text: "false" }));
  } else if (single && (single.type === "integer" || single.type === "number")) {
    control = el("input", { id, name, type: "number", inputmode: "numeric", "data-type": single.type,
      min: single.minimum ?? single.exclusiveMinimum, max: single.maximum ?? single.exclusiveMaximum,
      step: single.type === "integer" ? "1" : "any", "aria-describedby": described,
      placeholder: resolved.default != null ? String(resolved.default) : null });
  } else if (choices.some((option) => option.type === "string")) {
    const text = choices.find((option) => option.type === "string");
    control = el("input", { id, name, type: "text", autocomplete: "off", "aria-describedby": described,
      "data-pattern": text.pattern, "data-max": text.maxLength, "data-min": text.minLength,
      placeholder: resolved.examples ? String(resolved.examples[0]) : null });
    control.addEventListener("input", () => checkText(control, text));
    const scoped = choices.find((option) => option.type === "object" && option.properties && option.properties.scope);
    if (scoped) {  // a session: a name, and optionally its scope
      const scope = el("select", { id: `${id}-scope`, name: `${name}-scope` },
        el("option", { value: "", text: "(default scope)" }),
        ...resolve(scoped.properties.scope, root).enum.map((value) => el("option", { value, text: value })));
      return el("div", { class: "field" }, label, control,
                el("label", { for: `${id}-scope`, text: `${name}: scope` }), scope, help, problem);
    }
  } else {
    const list = choices.find((option) => option.type === "array");
    control = el("textarea", { id, name, rows: "3", spellcheck: "false", "aria-describedby": described,
      "data-type": list ? "array" : "object",
      placeholder: list ? "one value per line" : "one key: value per line" });
  }
  if (isRequired) control.setAttribute("aria-required", "true");
  return el("div", { class: "field" }, label, control, help, problem);
}

function credentialField(name, schema, isRequired, help) {
  const id = `in-${name}`;
  const source = el("select", { id: `${id}-source`, name: `${name}-source`, "data-credential": name,
                                "aria-describedby": `${id}-help` },
    isRequired ? null : el("option", { value: "", text: "(not given)" }),
    el("option", { value: "credential", text: "a credential in the vault" }),
    el("option", { value: "variable", text: "a bot variable" }),
    el("option", { value: "insecure", text: "written in the bot (insecure)" }));
  const part = (key, text, type = "text") => el("div", { class: "field", "data-source-part": key },
    el("label", { for: `${id}-${text.split(" ")[0].toLowerCase()}`, text }),
    el("input", { id: `${id}-${text.split(" ")[0].toLowerCase()}`, type, autocomplete: type === "password" ? "new-password" : "off" }));
  const parts = [part("credential", "Locker"), part("credential", "Name of the credential"),
                 part("credential", "Attribute"), part("variable", "Variable name"),
                 part("insecure", "Token (never shown again)", "password")];
  const update = () => { for (const piece of parts) piece.hidden = piece.dataset.sourcePart !== source.value; };
  source.addEventListener("change", update);
  update();
  return el("fieldset", { class: "credential" },
    el("legend", {}, el("code", { text: name }), isRequired ? el("span", { class: "required", text: " (required)" }) : null),
    el("label", { for: source.id, text: "Where the secret comes from" }), source, ...parts, help);
}

// A JSON Schema pattern as a JavaScript RegExp: Python's identity escapes (\") are not allowed
// with the "u" flag, so without it if need be; a pattern neither reads is left to the server.
function pattern(text) {
  for (const flags of ["u", ""]) {
    try { return new RegExp(text, flags); } catch (error) { /* the next way */ }
  }
  return null;
}

function checkText(control, schema) {
  const value = control.value;
  let problem = "";
  if (value && !value.includes("${")) {
    const rule = schema.pattern && pattern(schema.pattern);
    if (rule && !rule.test(value)) problem = `does not match the rule ${schema.pattern}`;
    else if (schema.maxLength && value.length > schema.maxLength) problem = `is longer than ${schema.maxLength} characters`;
  }
  control.setCustomValidity(problem ? `${control.name} ${problem}` : "");
  control.setAttribute("aria-invalid", problem ? "true" : "false");
  $(`${control.id}-error`).textContent = problem ? `${control.name} ${problem}.` : "";
  return !problem;
}

function valueOf(control) {
  const raw = control.value.trim();
  if (!raw) return undefined;
  switch (control.dataset.type) {
    case "boolean": return raw === "true";
    case "integer": case "number": return Number(raw);
    case "array": return raw.split("\n").map((line) => line.trim()).filter(Boolean).map(scalar);
    case "object": return Object.fromEntries(raw.split("\n").filter((line) => line.includes(":"))
      .map((line) => [line.slice(0, line.indexOf(":")).trim(), scalar(line.slice(line.indexOf(":") + 1).trim())]));
    default: return raw;
  }
}

function scalar(text) {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  return text;
}

function makeStep(action) {
  const error = $("step-error");
  const form = $("action-form");
  const inputs = {};
  const missing = [];
  let invalid = false;
  for (const control of form.querySelectorAll("input[name], select[name], textarea[name]")) {
    if (control.name.endsWith("-scope") || control.name.endsWith("-source")) continue;
    if (control.dataset.pattern !== undefined && !checkText(control, { pattern: control.dataset.pattern, maxLength: Number(control.dataset.max) || 0 })) invalid = true;
    const value = valueOf(control);
    const scope = $(`${control.id}-scope`);
    if (value !== undefined) inputs[control.name] = scope && scope.value ? { name: value, scope: scope.value } : value;
    else if (control.getAttribute("aria-required") === "true") missing.push(control.name);
  }
  for (const source of form.querySelectorAll("select[data-credential]")) {
    const name = source.dataset.credential;
    const id = `in-${name}`;
    if (source.value === "credential") {
      inputs[name] = { credential: { locker: $(`${id}-locker`).value.trim(), name: $(`${id}-name`).value.trim(),
                                     attribute: $(`${id}-attribute`).value.trim() } };
      if (Object.values(inputs[name].credential).some((part) => !part)) missing.push(`${name} (locker, name and attribute)`);
    } else if (source.value === "variable") {
      inputs[name] = { variable: $(`${id}-variable`).value.trim() };
      if (!inputs[name].variable) missing.push(`${name} (the variable's name)`);
    } else if (source.value === "insecure") {
      // The token itself never leaves its field: the step carries a mark to replace.
      inputs[name] = { insecure: "***" };
      $(`${id}-token`).value = "";
    }
  }
  if (missing.length || invalid) {
    error.textContent = missing.length ? `Give ${missing.join(", ")}.` : "Correct the inputs marked above.";
    $("step-output").hidden = true;
    return;
  }
  error.textContent = inputs[Object.keys(inputs).find((key) => inputs[key]?.insecure)] ?
    "The token is not written into the step: replace *** in your bot (better: a variable or the vault)." : "";
  $("step-yaml").value = stepYaml(action.name, inputs);
  $("step-output").hidden = false;
  $("step-yaml").focus();
}

// YAML of one step. Strings are written as JSON strings, which YAML reads as they are.
function stepYaml(name, inputs) {
  const lines = [`- action: ${name}`];
  const entries = Object.entries(inputs);
  if (entries.length) lines.push("  inputs:");
  for (const [key, value] of entries) lines.push(`    ${key}: ${JSON.stringify(value)}`);
  return lines.join("\n") + "\n";
}

// --- checking and running a bot -----------------------------------------------------------

function botBody() {
  const variables = {};
  for (const line of $("bot-variables").value.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) variables[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  const file = $("bot-file").files[0];
  return { bot: $("bot-text").value, variables, file_name: file && /\.ya?ml$/.test(file.name) ? file.name.replace(/[^A-Za-z0-9._-]/g, "_") : "bot.yaml" };
}

async function checkBot(event) {
  event.preventDefault();
  $("run-result").replaceChildren();
  const place = $("check-result");
  try {
    const checked = await api("POST", "/bots/check", botBody());
    const heading = checked.valid
      ? (checked.warnings ? `The bot is valid, with ${checked.warnings} warning${checked.warnings > 1 ? "s" : ""}.` : "The bot is valid.")
      : `${checked.errors} problem${checked.errors > 1 ? "s" : ""} found.`;
    place.replaceChildren(el("h3", { id: "check-heading", tabindex: "-1", text: heading }),
      el("ul", { class: "findings" }, ...checked.findings.map((finding) => el("li", { class: finding.severity },
        el("strong", { text: finding.severity === "error" ? "Error" : "Warning" }),
        finding.line ? ` line ${finding.line}` : "", finding.step ? `, step ${finding.step}` : "",
        finding.action ? ` (${finding.action})` : "", `: ${finding.message}`,
        finding.hint ? el("span", { class: "hint", text: ` Hint: ${finding.hint}` }) : null))));
  } catch (failure) {
    place.replaceChildren(el("p", { class: "error", role: "alert", id: "check-heading", tabindex: "-1",
                                    text: failure instanceof ApiError ? failure.explain() : String(failure) }));
  }
  $("check-heading").focus();
}

async function runBot() {
  $("check-result").replaceChildren();
  const place = $("run-result");
  say("Running the bot against the sandbox…");
  try {
    const result = await api("POST", "/bots/run", botBody());
    const heading = result.status === "succeeded"
      ? `The run succeeded: ${result.steps.length} steps, ${result.requests} requests.`
      : `The run failed: ${result.error.code}: ${result.error.message}`;
    place.replaceChildren(el("h3", { id: "run-heading", tabindex: "-1", text: heading }),
      result.error ? el("p", { class: "hint", text: `Hint: ${result.error.hint}` }) : null,
      el("div", { class: "table-wrap" }, el("table", { id: "run-steps" },
        el("caption", { text: "Steps of the run" }),
        el("thead", {}, el("tr", {}, ...["Step", "Action", "Status", "Time (ms)", "Requests"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, ...result.steps.map((step) => el("tr", {},
          el("td", { "data-label": "Step", text: step.path }), el("td", { "data-label": "Action", text: step.action }),
          el("td", { "data-label": "Status", class: `state-${step.status}`, text: step.status }),
          el("td", { "data-label": "Time (ms)", text: String(step.duration_ms) }),
          el("td", { "data-label": "Requests", text: String(step.requests) })))))));
    say(heading);
  } catch (failure) {
    place.replaceChildren(el("p", { class: "error", role: "alert", id: "run-heading", tabindex: "-1",
                                    text: failure instanceof ApiError ? failure.explain() : String(failure) }));
  }
  $("run-heading").focus();
}

function uploadBot() {
  const file = $("bot-file").files[0];
  if (!file) return;
  const session = state.session;
  file.text().then((text) => {
    if (session !== state.session) return;  // read for someone who signed out meanwhile
    $("bot-text").value = text;
    say(`Loaded ${file.name}.`);
  });
}

// --- wiring -------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["connections-title", "actions-title", "check-title"]) $(id).tabIndex = -1;
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("add-connection").addEventListener("click", () => openConnectionForm(null));
  $("remove-selected").addEventListener("click", () => removeConnections(selected()));
  $("connection-form").addEventListener("submit", saveConnection);
  $("connection-cancel").addEventListener("click", closeConnectionForm);
  $("c-name").addEventListener("input", checkName);
  $("c-organization").addEventListener("input", checkOrganization);
  $("c-method").addEventListener("change", methodChanged);
  $("check-form").addEventListener("submit", checkBot);
  $("run-bot").addEventListener("click", runBot);
  $("bot-file").addEventListener("change", uploadBot);
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  $("token").focus();
});
