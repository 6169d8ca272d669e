// A job's live events (GET /api/jobs/{id}/events, server-sent events) that survive network hiccups.
//
// The first connection asks for the events after `after` (`?last_event_id=`, the last event of the
// history the page loaded), so a long run's points are not sent twice. EventSource reconnects by
// itself after a dropped connection and sends the id of the last event it saw as Last-Event-ID,
// which the server prefers: it resumes right after it, no gap, nothing twice. When the browser
// gives up instead (the server answered an error while restarting), a new EventSource is opened
// after a pause, asking for the events after the last one seen; any at or below it are dropped here.

export class JobStream {
  // handlers: {status(job), metric(points), snapshot(picture), control(change), done(job), connection(state)};
  // control is a live parameter change, {step, params}. state is one of
  // "connecting", "live", "reconnecting" (the browser retries), "reopening" (a new EventSource), "closed".
  // after: the id of the newest event the caller has already (null: none, from the start).
  constructor(url, handlers, after = null) {
    this.url = url;
    this.handlers = handlers;
    this.startedAfter = after;
    this.lastId = after;
    this.received = 0; // events handed to the handlers
    this.source = null;
    this.closed = false;
    this.retryMs = 1000;
    this.reconnects = 0;
    this.states = []; // every connection state, in order (for the curious and the tests)
    this.open();
  }

  report(state) {
    this.states.push(state);
    this.handlers.connection?.(state);
  }

  open() {
    this.report(this.reconnects ? "reconnecting" : "connecting");
    const url = this.lastId === null ? this.url : `${this.url}?last_event_id=${this.lastId}`;
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", () => {
      this.retryMs = 1000;
      this.report("live");
    });
    source.addEventListener("error", () => {
      if (this.closed) return;
      if (source.readyState === EventSource.CONNECTING) {
        this.reconnects += 1;
        this.report("reconnecting");
        return;
      }
      // CLOSED: the browser will not retry; we do, with backoff.
      source.close();
      this.reconnects += 1;
      this.report("reopening");
      setTimeout(() => !this.closed && this.open(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 15000);
    });
    for (const type of ["status", "metric", "snapshot", "control", "done"]) {
      source.addEventListener(type, (event) => this.dispatch(type, event));
    }
  }

  dispatch(type, event) {
    if (event.lastEventId !== "") {
      const id = Number(event.lastEventId);
      if (Number.isFinite(id)) {
        if (this.lastId !== null && id <= this.lastId) return; // already seen
        this.lastId = id;
      }
    }
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    this.received += 1;
    if (type === "metric") this.handlers.metric?.(Array.isArray(data) ? data : [data]);
    else this.handlers[type]?.(data);
    if (type === "done") this.close();
  }

  // Drops the connection and opens a new one, as after the browser gave up (used by the tests).
  drop() {
    if (this.closed) return;
    this.source.close();
    this.reconnects += 1;
    this.open();
  }

  close() {
    this.closed = true;
    this.source?.close();
    this.report("closed");
  }
}
