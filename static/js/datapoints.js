// Your own data for the temperature experiments (linear, mlp): the [x, y] points as the data box
// holds them, checked here before anything is sent, with the line and the reason, as the server
// checks them (app/experiments/params.py names the point and what is allowed the same way).
//
// The data box takes CSV, one "x, y" per line (commas, semicolons, tabs or spaces between; a
// header line such as "x,y" or "t_u,t_c" is skipped), or JSON [[x, y], ...] as the API does.

export const MIN_POINTS = 2;

// Axis titles: the book's names only for the book's readings.
export function axisTitles(ownData) {
  return ownData ? { x: "x", y: "y" } : { x: "x (t_u)", y: "y (t_c, °C)" };
}

export class DataError extends Error {}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const NOT_FINITE_WORDS = /^[+-]?(nan|inf|infinity)$/i;

function countText(n) {
  return `${n.toLocaleString("en")} point${n === 1 ? "" : "s"}`;
}

// A token of the data box as a number, or null with the reason in `why`.
function readNumber(token) {
  const text = token.replace(/^["']|["']$/g, "");
  if (NOT_FINITE_WORDS.test(text)) return { why: `${text}, is not finite` };
  if (!DECIMAL.test(text)) return { why: `"${text}", is not a number` };
  const value = Number(text);
  if (!Number.isFinite(value)) return { why: `${text}, is too large` };
  return { value };
}

const WHAT_IS_ALLOWED = "each line is one point: x, y, two finite numbers (e.g. 35.7, 0.5)";

// The points of the data box. Empty: null (the book's data), unless `own` says the learner took
// them all away, which is zero points. Throws a DataError naming the line (or the JSON's point).
export function parsePoints(text, { min = MIN_POINTS, max = Infinity, own = false } = {}) {
  const trimmed = text.trim();
  if (!trimmed && !own) return null;
  const points = trimmed.startsWith("[") ? parseJsonPoints(trimmed) : parseCsvPoints(text);
  checkCount(points.length, { min, max });
  return points;
}

export function checkCount(n, { min = MIN_POINTS, max = Infinity } = {}) {
  if (n === 0 && min > 0) throw new DataError(`No points: a fit needs at least ${min}. Click the chart to add some, paste them into the data box, or use the book's data.`);
  if (n < min) throw new DataError(`${countText(n)}: a fit needs at least ${min}.`);
  if (n > max) {
    throw new DataError(`${countText(n)}: this server takes at most ${max.toLocaleString("en")} (its PLAYGROUND_MAX_DATA_POINTS).`);
  }
}

function parseCsvPoints(text) {
  const points = [];
  let seenContent = false;
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const tokens = line.split(/[\s,;]+/).filter(Boolean);
    const numbers = tokens.map(readNumber);
    const first = !seenContent;
    seenContent = true;
    // A header: the first line, with no number (nor NaN or Infinity) in it.
    if (first && tokens.every((token, k) => numbers[k].why && !NOT_FINITE_WORDS.test(token))) continue;
    const where = `line ${i + 1} ("${line.length > 40 ? `${line.slice(0, 37)}...` : line}")`;
    if (tokens.length !== 2) {
      throw new DataError(`${where} has ${tokens.length} value${tokens.length === 1 ? "" : "s"}; ${WHAT_IS_ALLOWED}.`);
    }
    const bad = numbers.findIndex((n) => n.why);
    if (bad >= 0) throw new DataError(`${where}: its ${bad === 0 ? "x" : "y"}, ${numbers[bad].why}; ${WHAT_IS_ALLOWED}.`);
    points.push([numbers[0].value, numbers[1].value]);
  }
  return points;
}

function parseJsonPoints(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DataError(`The data box starts with "[" but is not JSON (${error.message}); write [[x, y], ...] or one "x, y" per line.`);
  }
  if (!Array.isArray(value)) throw new DataError("The data box's JSON must be a list of [x, y] points.");
  value.forEach((point, i) => {
    const where = `point ${i + 1} (${JSON.stringify(point)})`;
    if (!Array.isArray(point) || point.length !== 2) throw new DataError(`${where} is not a pair [x, y] of two numbers.`);
    point.forEach((v, axis) => {
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new DataError(`${where}: its ${axis === 0 ? "x" : "y"}, ${JSON.stringify(v)}, is not a number; x and y must be finite numbers.`);
      }
    });
  });
  return value;
}

// The data box's text for points: one "x, y" per line, each number as JavaScript writes it (the
// shortest text that reads back as the same double, in Python too), so the job's data equals them.
export function pointsToText(points) {
  return points.map(([x, y]) => `${x}, ${y}`).join("\n");
}

// ---- points kept for the address ---------------------------------------------------------------
// The start page keeps its state in the address. A few points go in it as JSON (a link carries
// them); more would make an address too long to share or for a server to read, so they are kept
// in the tab's sessionStorage and the address carries only their key (data_key=...): a reload or
// Back finds them there; another tab or browser does not.

export const INLINE_CHARS = 1500; // of JSON: the address then stays under about 2,000 characters
const STORE_PREFIX = "playground.data.";

export function newDataKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// True when kept. A full storage first drops the other sets of points this tab kept.
export function keepPoints(key, points) {
  const text = JSON.stringify(points);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      sessionStorage.setItem(STORE_PREFIX + key, text);
      return true;
    } catch {
      for (const name of Object.keys(sessionStorage)) {
        if (name.startsWith(STORE_PREFIX) && name !== STORE_PREFIX + key) sessionStorage.removeItem(name);
      }
    }
  }
  return false;
}

export function keptPoints(key) {
  try {
    const text = sessionStorage.getItem(STORE_PREFIX + key);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}
