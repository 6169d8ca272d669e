// The Lessons page (/lessons): every lesson (GET /api/lessons, newest first) with links to its page
// and its class board. A teacher, the admin or anyone on an open server (who may delete one: the
// server answers a student 403) gets Delete, after a confirm; the runs started from it stay.

import { ApiError, request } from "./api.js";
import { el } from "./format.js";
import { onSignedIn } from "./header.js";

const root = document.getElementById("lessons");
const rowsBox = root.querySelector("[data-lessons-rows]");
const errorBox = root.querySelector("[data-lessons-error]");
const statusBox = root.querySelector("[data-lessons-status]");
const confirmDialog = document.getElementById("delete-lesson-dialog");
const AUTHORS = new Set(["teacher", "admin", "open"]); // lessonform.js's: who makes and removes lessons
let lessons = [];
let author = false;

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function created(lesson) {
  const when = new Date(lesson.created_at);
  return el("time", { datetime: lesson.created_at, title: when.toString() }, when.toLocaleString());
}

function row(lesson) {
  const page = `/lessons/${lesson.id}`;
  const about = [lesson.owner ? `by ${lesson.owner}` : null, `ranks by final ${lesson.metric}`].filter(Boolean).join(" · ");
  return el(
    "tr",
    { dataset: { lessonId: lesson.id } },
    el(
      "th",
      { scope: "row", class: "lesson-name" },
      el("a", { href: page }, lesson.title),
      el("span", { class: "muted small lesson-sub" }, about),
    ),
    el("td", { class: "lesson-kind" }, el("code", {}, lesson.kind)),
    el("td", { class: "lesson-created" }, created(lesson)),
    el("td", { class: "lesson-board" }, el("a", { href: `${page}/board` }, "Board", el("span", { class: "visually-hidden" }, ` of ${lesson.title}`))),
    el(
      "td",
      { class: "lesson-actions", hidden: !author },
      el(
        "button",
        { type: "button", class: "small danger", dataset: { delete: lesson.id }, onclick: () => confirmDelete(lesson) },
        "Delete",
        el("span", { class: "visually-hidden" }, ` ${lesson.title}`),
      ),
    ),
  );
}

function render() {
  rowsBox.replaceChildren(...lessons.map(row));
  root.querySelector("[data-actions-header]").hidden = !author;
  root.querySelector("[data-lessons-empty]").hidden = lessons.length > 0;
}

async function load() {
  try {
    lessons = (await request("GET", "/api/lessons")).items;
  } catch (error) {
    showError(`The lessons could not be read: ${error.message}`);
    return;
  }
  render();
  root.dataset.ready = "true";
}

function confirmDelete(lesson) {
  confirmDialog.querySelector("[data-delete-about]").textContent =
    `“${lesson.title}” (lesson ${lesson.id}): its page and its class board go; the runs started from it stay.`;
  confirmDialog.returnValue = "";
  confirmDialog.addEventListener(
    "close",
    () => {
      if (confirmDialog.returnValue === "delete") remove(lesson);
    },
    { once: true },
  );
  confirmDialog.showModal();
}

async function remove(lesson) {
  showError("");
  const index = lessons.indexOf(lesson);
  try {
    await request("DELETE", `/api/lessons/${lesson.id}`);
  } catch (error) {
    // Gone already (another teacher's Delete): the list drops it all the same.
    if (!(error instanceof ApiError && error.status === 404)) {
      showError(`“${lesson.title}” was not deleted: ${error.message}`);
      return;
    }
  }
  lessons = lessons.filter((other) => other !== lesson);
  render();
  statusBox.textContent = `Deleted “${lesson.title}”.`;
  // Keyboard focus goes on to the next lesson's Delete (the one before at the end), else the heading.
  const next = rowsBox.querySelectorAll("[data-delete]")[Math.min(index, lessons.length - 1)];
  (next ?? root.querySelector("#lessons-title")).focus();
}

onSignedIn((me) => {
  author = AUTHORS.has(me.role);
  root.querySelector("[data-author-hint]").hidden = !author;
  if (root.dataset.ready) render();
});
load();
