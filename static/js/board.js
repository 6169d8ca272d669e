// A lesson's class board (/lessons/{id}/board): each student's best run so far by the lesson's
// metric (GET /api/lessons/{id}/board), read again when the server's event stream (GET /api/events)
// says one of the lesson's runs was created, changed status or was deleted. Nothing polls.

import "./header.js";
import { ApiError, request } from "./api.js";
import { el } from "./format.js";
import { onServerEvents } from "./serverevents.js";

const root = document.getElementById("board");
const lessonId = Number(root.dataset.lessonId);
const rowsBox = root.querySelector("[data-board-rows]");
let known = new Set(); // the lesson's runs, as of the last read
let reading = null; // the read in flight
let again = false; // an event came during it: read once more after it
root.dataset.reads = "0";

function formatValue(value) {
  return value === null ? "—" : Number(value.toPrecision(5)).toString();
}

function render(board) {
  known = new Set(board.job_ids);
  root.querySelector("[data-metric-header]").textContent =
    `final ${board.metric} (${board.higher_is_better ? "higher" : "lower"} is better)`;
  rowsBox.replaceChildren(
    ...board.rows.map((row, index) =>
      el(
        "tr",
        { dataset: { owner: row.owner ?? "", jobId: row.job_id, status: row.status, value: row.value ?? "" } },
        el("td", {}, row.value === null ? "" : String(index + 1)),
        el("th", { scope: "row" }, row.owner ?? "(no user)"),
        el("td", {}, el("a", { href: `/jobs/${row.job_id}` }, row.job_name || row.job_id.slice(0, 8))),
        el("td", { class: "num" }, formatValue(row.value)),
        el("td", {}, el("span", { class: `status status-${row.status}` }, row.status)),
        el("td", { class: "num" }, String(row.runs)),
      ),
    ),
  );
  root.querySelector("[data-board-empty]").hidden = board.rows.length > 0;
  root.dataset.reads = String(Number(root.dataset.reads) + 1);
}

async function read() {
  if (reading) {
    again = true;
    return reading;
  }
  reading = (async () => {
    do {
      again = false;
      try {
        render(await request("GET", `/api/lessons/${lessonId}/board`));
      } catch (error) {
        const box = root.querySelector("[data-board-error]");
        box.textContent = error instanceof ApiError && error.status === 404 ? `There is no lesson ${lessonId}.` : error.message;
        box.hidden = false;
      }
    } while (again);
  })().finally(() => (reading = null));
  return reading;
}

async function showLesson() {
  root.querySelector("[data-lesson-link]").href = `/lessons/${lessonId}`;
  try {
    const lesson = await request("GET", `/api/lessons/${lessonId}`);
    root.querySelector("[data-board-title]").textContent = lesson.title;
    document.title = `${lesson.title}: the class board · PyTorch Playground`;
  } catch {
    // the board's own read says what is wrong
  }
}

const ofLesson = (job) => job.lesson_id === lessonId;
onServerEvents({
  reload: read, // after `live`: nothing is missed from here on
  created: (job) => ofLesson(job) && read(),
  status: (job) => ofLesson(job) && read(),
  deleted: ({ id }) => known.has(id) && read(),
});
showLesson();
