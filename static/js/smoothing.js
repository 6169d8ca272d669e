// Exponential moving average of a curve, debiased at the start (as in Adam and TensorBoard).
//
// A plain EMA that starts at 0 drags the first values towards 0; dividing by 1 - alpha^n (n: the
// values seen so far) removes that bias. Missing values (null) are skipped, not treated as 0. It
// must run over full-resolution points: over a downsampled history its weights would be wrong.

export class Ema {
  constructor(alpha) {
    this.alpha = alpha; // 0: no smoothing; 0.99: about the last 100 points
    this.reset();
  }

  reset() {
    this.value = 0;
    this.count = 0;
  }

  // The smoothed value after `x` (null stays null and leaves the state alone).
  push(x) {
    if (x === null || x === undefined || !Number.isFinite(x)) return null;
    this.count += 1;
    this.value = this.alpha * this.value + (1 - this.alpha) * x;
    const debias = 1 - this.alpha ** this.count;
    return debias > 0 ? this.value / debias : x;
  }
}

export function smooth(values, alpha) {
  const ema = new Ema(alpha);
  return values.map((x) => ema.push(x));
}
