// The server's job changes (GET /api/events, server-sent events): one EventSource per page, shared
// by whatever shows jobs (the runs list, the header's counts, Compare's run picker). Nothing polls.
//
// Each part of the page subscribes with handlers:
//   reload()          read your list now: on the first connection (after the server's `live`, so
//                     nothing is missed from then on), and after a `reset` (the server no longer has
//                     the events this page missed, it restarted, or the page fell behind)
//   created(job), status(job)   a job's summary, as GET /api/jobs lists it
//   progress({id, progress})    at most once a second per job
//   deleted({id})
//   lesson_created(lesson), lesson_deleted({id})   as GET /api/lessons lists a lesson (the Lessons page)
//   counts({running, queued})   with every event but progress
//   connection(state)           "connecting", "live", "reconnecting", "reopening"
// After a dropped connection the browser reconnects by itself with Last-Event-ID and the server
// sends exactly what was missed. When the browser gives up instead (the server answered an error
// while it restarted), a new EventSource is opened after a pause (the only timer here, and only
// while disconnected), asking for the events after the last one seen.

const URL_PATH = "/api/events";
const subscribers = new Set();
let source = null;
let lastId = null; // the newest event id seen ("<run>-<n>")
let retryMs = 1000;
let state = "connecting";

export const serverEvents = {
  get lastId() {
    return lastId;
  },
  get state() {
    return state;
  },
  opened: 0, // EventSources opened (for the tests)
};

export function onServerEvents(handlers) {
  subscribers.add(handlers);
  if (!source) open();
  else if (state === "live") handlers.reload?.(); // the page is already subscribed: read the list now
  return () => subscribers.delete(handlers);
}

function emit(name, ...args) {
  for (const handlers of subscribers) {
    try {
      handlers[name]?.(...args);
    } catch (error) {
      console.error(`server event ${name}:`, error);
    }
  }
}

function report(next) {
  state = next;
  emit("connection", next);
}

function open() {
  serverEvents.opened += 1;
  const url = lastId === null ? URL_PATH : `${URL_PATH}?last_event_id=${encodeURIComponent(lastId)}`;
  const es = new EventSource(url);
  source = es;
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CONNECTING) {
      report("reconnecting");
      return;
    }
    es.close();
    report("reopening");
    setTimeout(open, retryMs);
    retryMs = Math.min(retryMs * 2, 15000);
  });
  es.addEventListener("live", (event) => {
    retryMs = 1000;
    const greeting = parse(event);
    if (!greeting) return;
    report("live");
    if (greeting.counts) emit("counts", greeting.counts);
    if (!greeting.resumed) emit("reload"); // else the missed events follow, or a `reset`
  });
  es.addEventListener("reset", (event) => {
    const data = parse(event);
    seen(event);
    if (data?.counts) emit("counts", data.counts);
    emit("reload");
  });
  for (const type of ["created", "status", "progress", "deleted", "lesson_created", "lesson_deleted"]) {
    es.addEventListener(type, (event) => {
      const data = parse(event);
      if (!data || !seen(event)) return;
      const { counts, ...rest } = data;
      emit(type, rest);
      if (counts) emit("counts", counts);
    });
  }
}

// Keeps the newest id; false for one already seen (a reopened stream that overlaps).
function seen(event) {
  if (!event.lastEventId) return true;
  const [run, n] = split(event.lastEventId);
  const [lastRun, lastN] = lastId === null ? [null, -1] : split(lastId);
  if (run === lastRun && n <= lastN) return false;
  lastId = event.lastEventId;
  return true;
}

function split(id) {
  const at = id.lastIndexOf("-");
  return [id.slice(0, at), Number(id.slice(at + 1))];
}

function parse(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return null;
  }
}
