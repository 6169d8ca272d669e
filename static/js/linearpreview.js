// The chapter-5 line fit run in the browser: the same loop and update rules as
// app/experiments/linear.py (manual gradient, autograd, torch.optim's SGD and Adam), in float32 as
// far as JavaScript allows, so that the start page can draw where a start (w, b) leads while it is
// dragged, before anything is sent.
//
// Every tensor operation of the server's loop is one float32 operation there; here each is a
// double operation rounded to float32 (Math.fround), which gives the same float32 result for +, −,
// ×, ÷ and sqrt. What cannot match bit for bit is the order of the sums over the points (torch
// adds in vectorised lanes, this adds left to right): a few float32 roundings per step, which the
// descent does not amplify, so after hundreds of steps w and b agree to about 1e-6 relative
// (tests/browser/test_start_surface.py holds them to 1e-4, the bound).
//
// Pure functions, no DOM: racesurface.js and startsurface.js draw what this returns.

const f32 = Math.fround;

// Adam's defaults in torch.optim.Adam (betas, eps), as linear.py uses it.
const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

// What the preview may cost: points × epochs stays under this, so a drag redraws within a frame
// (the book's 11 points: 100,000 epochs, its maximum, take about 1.1M steps of work).
export const PREVIEW_BUDGET = 2_000_000;

// The loss and the gradient of one epoch, as the server's forward and backward compute them.
// `manual` (the book's grad_fn): dL/dt_p = 2 (t_p − t_c) / n; autograd's backward of mean((t_p −
// t_c)²): (1/n) · 2 (t_p − t_c). The same in exact arithmetic, rounded differently in float32.
function lossAndGrad(u, y, w, b, manual) {
  const n = u.length;
  const invN = f32(1 / n);
  let loss = 0, gw = 0, gb = 0;
  for (let i = 0; i < n; i++) {
    const tp = f32(f32(w * u[i]) + b); // model: w * t_u + b
    const diff = f32(tp - y[i]);
    loss += diff * diff; // only its finiteness and the chart use it: double is fine
    const twice = f32(2 * diff);
    const dtp = manual ? f32(twice / n) : f32(invN * twice);
    gw = f32(gw + f32(dtp * u[i]));
    gb = f32(gb + dtp);
  }
  return { loss: loss / n, gw, gb };
}

// The run's loop: `epochs` epochs from (initW, initB) on [x, y] `points`, each point recorded
// before its step as linear.py emits it ({w, b, loss} of epoch k is the state epoch k starts from);
// `final` is the state after the last step, the run's result. Stops where the loss stops being
// finite, as the server does (diverged). At most `budget` point-steps are computed (truncated).
export function previewRun({ points, inputScale, optimizer, lr, epochs, initW, initB }, budget = PREVIEW_BUDGET) {
  const scale = f32(inputScale);
  const u = Float32Array.from(points, ([x]) => f32(scale * f32(x))); // t_un = input_scale * t_u
  const y = Float32Array.from(points, ([, yy]) => yy);
  const rate = f32(lr); // a Python float times a float32 tensor: the scalar is taken as float32
  const steps = Math.max(0, Math.min(epochs, Math.floor(budget / Math.max(1, points.length))));
  const ws = [], bs = [], losses = [];
  let w = f32(initW), b = f32(initB);
  let m = [0, 0], v = [0, 0]; // Adam's moments
  let diverged = false;
  for (let epoch = 1; epoch <= steps; epoch++) {
    const { loss, gw, gb } = lossAndGrad(u, y, w, b, optimizer === "manual");
    if (!Number.isFinite(loss)) {
      diverged = true;
      break;
    }
    ws.push(w);
    bs.push(b);
    losses.push(loss);
    if (optimizer === "adam") [w, b, m, v] = adamStep([w, b], [gw, gb], m, v, epoch, lr);
    else {
      // manual: coeffs - lr * grad; autograd: coeffs -= lr * grad; SGD: p.add_(grad, alpha=-lr)
      w = f32(w - f32(rate * gw));
      b = f32(b - f32(rate * gb));
    }
  }
  return { ws, bs, losses, final: { w, b }, steps: ws.length, diverged, truncated: steps < epochs && !diverged };
}

// The preview of a run with these parameters (a linear run's params, as the form sends them and the
// job keeps them) on `points`: the one call the start page and the run page both make, so the run
// page redraws exactly the path the start page showed. A run made before init_w and init_b existed
// started from the book's (1, 0), as linear.py's with_start says.
export function previewOfParams(params, points, budget = PREVIEW_BUDGET) {
  return previewRun({
    points,
    inputScale: params.input_scale,
    optimizer: params.optimizer,
    lr: params.lr,
    epochs: params.epochs,
    initW: params.init_w ?? 1,
    initB: params.init_b ?? 0,
  }, budget);
}

// The path to draw: the state each epoch starts from, then where the last step lands (none after a
// step that blew up).
export function previewPath(run) {
  return run.diverged ? { ws: run.ws, bs: run.bs } : { ws: [...run.ws, run.final.w], bs: [...run.bs, run.final.b] };
}

// Where the preview is after `epochs` steps (a run stopped early is compared where it stopped), or
// null when the preview does not get that far (it blew up first, or its budget ended).
export function previewAfter(run, epochs) {
  if (epochs === run.steps && !run.diverged) return run.final;
  if (epochs < run.steps) return { w: run.ws[epochs], b: run.bs[epochs] };
  return null;
}

// torch.optim.Adam's single-tensor step (amsgrad off, no weight decay): the moments in float32,
// the bias corrections and the step size in double as Python computes them.
function adamStep(params, grads, m, v, step, lr) {
  const bc1 = 1 - BETA1 ** step;
  const bc2Sqrt = (1 - BETA2 ** step) ** 0.5;
  const stepSize = lr / bc1;
  const w1 = f32(1 - BETA1), b2 = f32(BETA2), w2 = f32(1 - BETA2);
  const out = params.slice(), m2 = m.slice(), v2 = v.slice();
  for (let k = 0; k < 2; k++) {
    const g = grads[k];
    // torch's CPU kernels fuse a multiply into the add (fma): the product of two float32 is exact
    // in a double, so one rounding of the double sum gives the fused result.
    m2[k] = f32(m[k] + w1 * f32(g - m[k])); // exp_avg.lerp_(grad, 1 - beta1)
    v2[k] = f32(f32(v[k] * b2) + f32(w2 * g) * g); // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    const denom = f32(f32(f32(Math.sqrt(v2[k])) / f32(bc2Sqrt)) + f32(EPS)); // (sqrt(v) / bc2_sqrt).add_(eps)
    out[k] = f32(params[k] + f32(f32(f32(-stepSize) * m2[k]) / denom)); // addcdiv_(exp_avg, denom, value=-step_size)
  }
  return [out[0], out[1], m2, v2];
}
