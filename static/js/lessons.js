// The Lessons page (/lessons): every lesson (GET /api/lessons, newest first) with links to its page
// and its class board. A teacher, the admin or anyone on an open server (who may delete one: the
// server answers a student 403) gets Delete, after a confirm; the runs started from it stay.
//
// The list follows the server's event stream (GET /api/events): a lesson made or deleted anywhere
// appears or goes without a reload, and nothing polls. The list is read after the stream's `live`
// (and after a `reset`); events that come while that read is in flight are applied after it.

import { ApiError, request } from "./api.js";
import { el } from "./format.js";
import { onSignedIn } from "./header.js";
import { onServerEvents } from "./serverevents.js";

const root = document.getElementById("lessons");
const rowsBox = root.querySelector("[data-lessons-rows]");
const errorBox = root.querySelector("[data-lessons-error]");
const statusBox = root.querySelector("[data-lessons-status]");
const confirmDialog = document.getElementById("delete-lesson-dialog");
const AUTHORS = new Set(["teacher", "admin", "open"]); // lessonform.js's: who makes and removes lessons
let lessons = [];
let author = false;
let reading = null; // the list's read in flight
let again = false; // a reset came during it: read once more
let held = []; // [apply] events that came during it
root.dataset.reads = "0";

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

// The rows drawn anew; keyboard focus in a row that stays stays on the same link or button.
function render() {
  const active = rowsBox.contains(document.activeElement) ? document.activeElement : null;
  const focusables = (tr) => [...tr.querySelectorAll("a, button")];
  const kept = active && [active.closest("tr").dataset.lessonId, focusables(active.closest("tr")).indexOf(active)];
  rowsBox.replaceChildren(...lessons.map(row));
  root.querySelector("[data-actions-header]").hidden = !author;
  root.querySelector("[data-lessons-empty]").hidden = lessons.length > 0;
  const again = kept && rowsBox.querySelector(`tr[data-lesson-id="${kept[0]}"]`);
  if (again) focusables(again)[kept[1]]?.focus();
}

async function load() {
  if (reading) {
    again = true;
    return reading;
  }
  reading = (async () => {
    let read = false;
    do {
      again = false;
      try {
        lessons = (await request("GET", "/api/lessons")).items;
        root.dataset.reads = String(Number(root.dataset.reads) + 1);
        read = true;
        showError("");
      } catch (error) {
        showError(`The lessons could not be read: ${error.message}`);
      }
    } while (again);
    // What happened while the list was read: each is idempotent, so one the list has is no harm.
    for (const apply of held.splice(0)) apply();
    if (!read) return;
    render();
    root.dataset.ready = "true";
  })().finally(() => (reading = null));
  return reading;
}

// A change from the stream: at once, or after the read in flight (which may or may not have it).
function follow(apply) {
  if (reading) held.push(apply);
  else {
    apply();
    render();
  }
}

function added(lesson) {
  if (lessons.some((other) => other.id === lesson.id)) return;
  lessons = [...lessons, lesson].sort((a, b) => b.id - a.id); // newest first, as the list reads
  statusBox.textContent = `Lesson “${lesson.title}” was added.`;
}

// Gone elsewhere (another tab, another teacher): keyboard focus on its Delete moves on as after a Delete here.
function removed(id) {
  const index = lessons.findIndex((lesson) => lesson.id === id);
  if (index < 0) return;
  const [lesson] = lessons.splice(index, 1);
  lessons = [...lessons];
  const hadFocus = rowsBox.querySelector(`tr[data-lesson-id="${id}"]`)?.contains(document.activeElement);
  statusBox.textContent = `Lesson “${lesson.title}” was deleted.`;
  if (hadFocus) queueMicrotask(() => focusAfter(index));
}

function focusAfter(index) {
  const next = rowsBox.querySelectorAll("[data-delete]")[Math.min(index, lessons.length - 1)];
  (next && !next.closest("[hidden]") ? next : root.querySelector("#lessons-title")).focus();
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
  const index = lessons.findIndex((other) => other.id === lesson.id); // the row's object may predate a reread
  try {
    await request("DELETE", `/api/lessons/${lesson.id}`);
  } catch (error) {
    // Gone already (another teacher's Delete): the list drops it all the same.
    if (!(error instanceof ApiError && error.status === 404)) {
      showError(`“${lesson.title}” was not deleted: ${error.message}`);
      return;
    }
  }
  lessons = lessons.filter((other) => other.id !== lesson.id); // the stream's lesson_deleted may have come first
  render();
  statusBox.textContent = `Deleted “${lesson.title}”.`;
  // Keyboard focus goes on to the next lesson's Delete (the one before at the end), else the heading.
  focusAfter(index);
}

onSignedIn((me) => {
  author = AUTHORS.has(me.role);
  root.querySelector("[data-author-hint]").hidden = !author;
  if (root.dataset.ready) render();
});
onServerEvents({
  reload: load, // after `live`: nothing is missed from here on
  lesson_created: (lesson) => follow(() => added(lesson)),
  lesson_deleted: ({ id }) => follow(() => removed(id)),
});
