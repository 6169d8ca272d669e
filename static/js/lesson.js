// A lesson's page (/lessons/{id}): the teacher's title and instructions (rendered safely by the
// server: GET /api/lessons/{id} -> instructions_html), and the kind's form with the lesson's
// values: locked parameters shown disabled with a note, hidden ones not shown. Train starts a run
// with `lesson_id`; the server takes the lesson's values for what the form does not send and
// refuses a student's change to a locked or hidden one (422 naming it, shown by its field).

import "./header.js";
import { api, ApiError, request } from "./api.js";
import { clearErrors, describeFields, FieldErrors, readParams, renderFields, showErrors } from "./form.js";

const root = document.getElementById("lesson");
const lessonId = Number(root.dataset.lessonId);
const form = document.getElementById("lesson-form");
let lesson = null;
let shown = []; // the fields on the form (the hidden ones are not)

function metricText(lesson) {
  return `final ${lesson.metric}, ${lesson.higher_is_better ? "higher" : "lower"} is better`;
}

async function load() {
  let kinds;
  try {
    [lesson, kinds] = await Promise.all([request("GET", `/api/lessons/${lessonId}`), api.kinds()]);
  } catch (error) {
    const box = root.querySelector("[data-lesson-error]");
    box.textContent = error instanceof ApiError && error.status === 404 ? `There is no lesson ${lessonId}.` : error.message;
    box.hidden = false;
    return;
  }
  const info = kinds.find((kind) => kind.kind === lesson.kind);
  document.title = `${lesson.title} · PyTorch Playground`;
  root.querySelector("[data-lesson-title]").textContent = lesson.title;
  root.querySelector("[data-lesson-about]").textContent =
    `${info ? info.title : lesson.kind}${lesson.owner ? ` · by ${lesson.owner}` : ""} · the board ranks by ${metricText(lesson)}`;
  // Safe as it is: the server escapes the teacher's text before it makes its few tags (app/safe_markdown.py).
  root.querySelector("[data-lesson-instructions]").innerHTML = lesson.instructions_html;
  const fields = describeFields(info.params_schema);
  shown = fields.filter((field) => !lesson.hidden.includes(field.name));
  form.querySelector("#param-fields").replaceChildren(
    ...renderFields(fields, lesson.params, {
      hidden: lesson.hidden,
      locked: lesson.locked,
      lockNote: "Locked by the lesson: shown, not editable.",
      context: { defaultData: info.default_data },
    }),
  );
  const hiddenNote = form.querySelector("[data-hidden-note]");
  hiddenNote.textContent = lesson.hidden.length
    ? `The lesson also sets ${lesson.hidden.length} parameter${lesson.hidden.length === 1 ? "" : "s"} it does not show.`
    : "";
  hiddenNote.hidden = !lesson.hidden.length;
  form.querySelector("[data-board-link]").href = `/lessons/${lessonId}/board`;
  form.hidden = false;
  root.dataset.ready = "true";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  let params;
  try {
    params = readParams(form, shown);
  } catch (error) {
    if (error instanceof FieldErrors) return showErrors(form, error.errors);
    throw error;
  }
  const seed = form.elements.namedItem("seed").value;
  const name = form.elements.namedItem("name").value.trim();
  const button = form.querySelector("#train-button");
  button.disabled = true;
  try {
    const job = await api.createJob({
      kind: lesson.kind,
      params,
      lesson_id: lessonId,
      seed: seed === "" ? null : Number(seed),
      name: name || lesson.title,
    });
    location.assign(`/jobs/${job.id}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && Array.isArray(error.detail)) showErrors(form, error.fieldErrors());
    else showErrors(form, [{ field: null, msg: error.message }]);
  } finally {
    button.disabled = false;
  }
});

load();
