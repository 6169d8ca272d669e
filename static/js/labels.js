// A run's name and notes, changed in place (PATCH /api/jobs/{id}/label): the run page edits both, the
// runs list the name. The server tells open lists as a `status` change on /api/events.

import { request } from "./api.js";
import { el } from "./format.js";

export const NAME_MAX = 200; // app/models.py's MAX_NAME_CHARS: the same at create and at rename
export const NOTES_MAX = 2000;

// fields: {name} and/or {notes}; null or "" clears one. The job as the server has it now.
export function saveLabel(id, fields) {
  return request("PATCH", `/api/jobs/${encodeURIComponent(id)}/label`, { body: fields });
}

// An editor in place of `shown` (hidden while it is open): a text field (a text area when
// `multiline`), Save and Cancel. Enter saves a one-line field, Escape cancels. `save(value)` throws
// to keep it open with the message under the field; `closed(saved)` runs once it has gone, and
// focus goes back to `returnFocus`.
export function editInPlace(shown, { value, label, maxLength, multiline = false, save, closed, returnFocus }) {
  const id = `edit-${Math.random().toString(36).slice(2)}`;
  const field = multiline
    ? el("textarea", { id, rows: "4", maxlength: String(maxLength), "aria-describedby": `${id}-error`, dataset: { labelField: "" } })
    : el("input", { id, type: "text", maxlength: String(maxLength), "aria-describedby": `${id}-error`, dataset: { labelField: "" } });
  field.value = value ?? "";
  const error = el("p", { class: "form-error", id: `${id}-error`, role: "alert", hidden: true });
  const saveButton = el("button", { type: "submit", class: "small" }, "Save");
  const cancel = el("button", { type: "button", class: "small" }, "Cancel");
  const form = el(
    "form",
    { class: "label-editor", novalidate: true, dataset: { labelEditor: "" } },
    el("label", { for: id, class: "visually-hidden" }, label),
    field,
    " ",
    saveButton,
    " ",
    cancel,
    error,
  );
  let open = true;
  const close = (saved) => {
    if (!open) return;
    open = false;
    form.remove();
    shown.hidden = false;
    closed?.(saved);
    returnFocus?.focus();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (field.value.length > maxLength) {
      error.textContent = `At most ${maxLength} characters (this has ${field.value.length}).`;
      error.hidden = false;
      return;
    }
    saveButton.disabled = true;
    try {
      await save(field.value.trim());
      close(true);
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
      field.setAttribute("aria-invalid", "true");
      field.focus();
    } finally {
      saveButton.disabled = false;
    }
  });
  cancel.addEventListener("click", () => close(false));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close(false);
    }
  });
  shown.hidden = true;
  shown.after(form);
  field.focus();
  field.select?.();
  return form;
}
