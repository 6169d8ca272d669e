// "Save as a lesson…" on the start page: a teacher (or the admin, or anyone on an open server) saves
// the form's current values as a lesson (POST /api/lessons) with a title, instructions in Markdown,
// the metric its class board ranks by, and per parameter whether the class may edit it, sees it
// locked, or does not see it. The server checks it as it checks a run; a 422 is shown by the field
// it names. On success the dialog gives the lesson's link and its board's, to copy, and shows the
// instructions as the server renders them for the class (app/safe_markdown.py): the page does not
// render Markdown itself, so what the teacher sees is what the class will. While the teacher types,
// a preview under the instructions shows the same rendering (POST /api/lessons/instructions/preview),
// asked for once typing pauses (PREVIEW_PAUSE_MS), not at every key.

import { ApiError, request } from "./api.js";
import { clearErrors, FieldErrors, showErrors } from "./form.js";
import { el } from "./format.js";
import { onSignedIn } from "./header.js";

// Who may make a lesson (GET /api/me's role): a teacher, the admin token, and anyone on an open
// server (no users: everyone is the admin there, and the server takes their POST).
const AUTHORS = new Set(["teacher", "admin", "open"]);
const ROLES = [
  ["editable", "editable"],
  ["locked", "locked (shown, not editable)"],
  ["hidden", "hidden (not shown)"],
];
// How long typing must pause before the preview is asked for: one request per pause, not per key.
const PREVIEW_PAUSE_MS = 300;
// The kinds whose runs report accuracies (app/lessons.py's ACCURACY_KINDS).
const ACCURACY_KINDS = new Set(["cifar"]);

// The metric the server picks when none is given (app/lessons.py's default_metric).
function defaultMetric(kind, params) {
  if (ACCURACY_KINDS.has(kind)) return "val_acc";
  return (params.val_fraction ?? 0) > 0 ? "val_loss" : "train_loss";
}

function metricLabel(metric) {
  return `${metric} (${metric.endsWith("_acc") ? "higher" : "lower"} is better)`;
}

// A parameter's value in a few characters, for its row.
function valueText(name, value) {
  if (name === "data") return Array.isArray(value) ? `${value.length.toLocaleString("en")} points of your own` : "the book's data";
  if (value === null || value === undefined || value === "") return "empty";
  if (typeof value === "object") {
    const text = JSON.stringify(value);
    return text.length > 40 ? `${text.slice(0, 39)}…` : text;
  }
  return String(value);
}

// A 422's errors by the dialog's fields: a parameter's by its row, the locked and hidden lists'
// below the rows ("-roles": a parameter may itself be called `hidden`), the rest by their field.
function fieldErrors(detail) {
  return detail.map(({ loc = [], msg }) => {
    const [, part, name] = loc;
    const field = part === "params" && name !== undefined ? String(name) : ["locked", "hidden"].includes(part) ? "-roles" : part;
    return { field: field ?? null, msg: msg || "not allowed" };
  });
}

function absolute(path) {
  return new URL(path, location.origin).href;
}

// button: "Save as a lesson…"; dialog: templates/index.html's #lesson-dialog.
// current(): {kind, kindTitle, fields, params} of the start page's form; throws FieldErrors when a
// field does not parse (the start page shows them by its fields, and the dialog does not open).
export function mountLessonDialog({ button, dialog, current, onFormErrors }) {
  const form = dialog.querySelector("form");
  const heading = dialog.querySelector("#lesson-dialog-title");
  const saved = dialog.querySelector("[data-lesson-saved]");
  const paramsBox = form.querySelector("[data-lesson-params]");
  const metricSelect = form.elements.namedItem("metric");
  const saveButton = form.querySelector("[data-lesson-save]");
  let spec = null; // what the dialog was opened with
  const preview = new InstructionsPreview(form.elements.namedItem("instructions"));

  onSignedIn((me) => {
    button.hidden = !AUTHORS.has(me.role);
  });

  function showForm() {
    heading.textContent = "Save as a lesson";
    form.hidden = false;
    saved.hidden = true;
    clearErrors(form);
  }

  function open() {
    try {
      spec = current();
    } catch (error) {
      if (error instanceof FieldErrors) return onFormErrors(error.errors);
      throw error;
    }
    showForm();
    form.querySelector("[data-lesson-kind]").textContent = spec.kindTitle;
    const fallback = defaultMetric(spec.kind, spec.params);
    const metrics = ["train_loss", "val_loss", ...(ACCURACY_KINDS.has(spec.kind) ? ["train_acc", "val_acc"] : [])];
    const chosen = metricSelect.value;
    metricSelect.replaceChildren(
      new Option(`default: ${metricLabel(fallback)}`, ""),
      ...metrics.map((metric) => new Option(metricLabel(metric), metric)),
    );
    metricSelect.value = metrics.includes(chosen) ? chosen : "";
    paramsBox.replaceChildren(...spec.fields.map((field) => paramRow(field.name, spec.params[field.name])));
    preview.now();
    dialog.showModal();
    form.elements.namedItem("title").focus();
  }

  // One parameter: its name and the form's value, and a choice of editable, locked or hidden.
  function paramRow(name, value) {
    const id = `lesson-role-${name}`;
    const select = el(
      "select",
      { id, name: `role-${name}`, "aria-describedby": `${id}-error` },
      ROLES.map(([role, label]) => el("option", { value: role }, label)),
    );
    return el(
      "div",
      { class: "lesson-param", dataset: { field: name } },
      el("label", { for: id }, el("code", {}, name), " = ", el("span", { class: "lesson-param-value" }, valueText(name, value))),
      select,
      el("p", { class: "field-error", id: `${id}-error`, role: "alert", hidden: true }),
    );
  }

  function body() {
    const locked = [];
    const hidden = [];
    for (const field of spec.fields) {
      const role = form.elements.namedItem(`role-${field.name}`).value;
      if (role === "locked") locked.push(field.name);
      else if (role === "hidden") hidden.push(field.name);
    }
    const metric = metricSelect.value;
    return {
      title: form.elements.namedItem("title").value.trim(),
      instructions: form.elements.namedItem("instructions").value,
      kind: spec.kind,
      params: spec.params,
      locked,
      hidden,
      ...(metric ? { metric } : {}),
    };
  }

  async function save(event) {
    event.preventDefault();
    clearErrors(form);
    saveButton.disabled = true;
    try {
      showSaved(await request("POST", "/api/lessons", { body: body() }));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 422 && Array.isArray(error.detail)) showErrors(form, fieldErrors(error.detail));
      else showErrors(form, [{ field: null, msg: error.message }]);
    } finally {
      saveButton.disabled = false;
    }
  }

  function showSaved(lesson) {
    const page = absolute(`/lessons/${lesson.id}`);
    const board = absolute(`/lessons/${lesson.id}/board`);
    heading.textContent = "Lesson saved";
    form.hidden = true;
    saved.hidden = false;
    saved.dataset.lessonId = String(lesson.id);
    saved.querySelector("[data-saved-about]").textContent =
      `“${lesson.title}” is lesson ${lesson.id}. Give the class its link; its board ranks each student's best run by the final ${metricLabel(lesson.metric)}.`;
    saved.querySelector("#lesson-link").value = page;
    saved.querySelector("#lesson-board-link").value = board;
    saved.querySelector("[data-open-lesson]").href = page;
    saved.querySelector("[data-open-board]").href = board;
    saved.querySelector("[data-copy-status]").textContent = "";
    const instructions = saved.querySelector("[data-saved-instructions]");
    // Safe as it is: the server escapes the teacher's text before it makes its few tags.
    instructions.innerHTML = lesson.instructions_html || "<p>(no instructions)</p>";
    // A new lesson next time: the choices were this one's.
    form.reset();
    saved.querySelector("[data-saved-about]").focus();
  }

  function copy(input) {
    const status = saved.querySelector("[data-copy-status]");
    const label = input.labels[0].textContent.trim();
    input.select();
    const done = () => (status.textContent = `${label} copied.`);
    const failed = () => (status.textContent = "The link is selected: copy it with Ctrl+C (⌘C).");
    if (navigator.clipboard) navigator.clipboard.writeText(input.value).then(done, failed);
    else failed();
  }

  button.addEventListener("click", open);
  dialog.addEventListener("close", () => preview.stop());
  form.addEventListener("submit", save);
  form.querySelector("[data-lesson-cancel]").addEventListener("click", () => dialog.close());
  saved.querySelector("[data-lesson-close]").addEventListener("click", () => dialog.close());
  for (const copyButton of saved.querySelectorAll("[data-copy]")) {
    copyButton.addEventListener("click", () => copy(saved.querySelector(`#${copyButton.dataset.copy}`)));
  }
}

// The instructions as the class will see them, under the text area: the server's rendering of the
// text (it escapes everything before it makes its few tags, so the HTML is safe as it is), asked for
// PREVIEW_PAUSE_MS after the last key; an answer to an older text than the newest asked is dropped.
class InstructionsPreview {
  constructor(textarea) {
    this.textarea = textarea;
    this.timer = null;
    this.asked = 0; // requests sent (for the tests: fewer than the keys typed)
    this.shownFor = null; // the text the preview shows
    this.box = el("div", { class: "lesson-instructions lesson-preview", id: "lesson-instructions-preview", dataset: { instructionsPreview: "", requests: "0" } });
    const field = textarea.closest(".field");
    field.after(el("div", { class: "field", role: "group", "aria-labelledby": "lesson-preview-title" },
      // Not named "instructions": the text area alone answers to that label.
      el("p", { class: "help", id: "lesson-preview-title" }, "Preview, as the class will see it:"),
      this.box));
    this.box.style.cssText = "border-left: 3px solid var(--border); padding-left: 0.7rem; max-height: 14rem; overflow: auto";
    textarea.addEventListener("input", () => this.later());
  }

  later() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.now(), PREVIEW_PAUSE_MS);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  async now() {
    this.stop();
    const text = this.textarea.value;
    if (text === this.shownFor) return;
    if (!text.trim()) {
      this.show(text, "<p class=\"muted\">(no instructions)</p>");
      return;
    }
    this.asked += 1;
    this.box.dataset.requests = String(this.asked);
    this.box.setAttribute("aria-busy", "true");
    try {
      const reply = await request("POST", "/api/lessons/instructions/preview", { body: { instructions: text } });
      if (this.textarea.value === text) this.show(text, reply.html);
    } catch (error) {
      if (this.textarea.value !== text) return;
      this.shownFor = null;
      this.box.replaceChildren(el("p", { class: "muted" }, `No preview: ${error instanceof ApiError ? error.message : error}`));
    } finally {
      if (this.textarea.value === text) this.box.removeAttribute("aria-busy");
    }
  }

  show(text, html) {
    this.shownFor = text;
    // Safe as it is: the server escapes the teacher's text before it makes its few tags.
    this.box.innerHTML = html;
    this.box.dataset.shownFor = String(text.length); // for the tests
  }
}
