// The start page's own defaults and presets, laid over the server's defaults (GET /api/kinds), and
// the time estimate shown before Train.
//
// Chapter 7 starts where the book does: CIFAR-2 (airplanes against birds) with the book's convnet,
// trained with the fast recipe (bench/cifar_accuracy.py part 2: 6 one-cycle epochs, 0.89 validation
// accuracy in about 21 s on a 2-core CPU). CIFAR-10 with the ResNet (part 1: 85% in about 10 min)
// is a preset. The server's own defaults (its schema) stay as they are.

const CIFAR2_BOOK_CONVNET = {
  dataset: "cifar2",
  model: "conv",
  epochs: 6,
  batch_size: 64,
  lr: 0.05,
  optimizer: "nesterov_onecycle",
  weight_decay: 5e-4,
  augment: true,
  label_smoothing: 0,
  limit_train: null,
};
const CIFAR10_RESNET = {
  dataset: "cifar10",
  model: "resnet",
  epochs: 8,
  batch_size: 128, // convolutions run about 1.3x faster per image than at 64 on a CPU
  lr: 0.1, // the peak rate, scaled with the batch
  optimizer: "nesterov_onecycle",
  weight_decay: 5e-4,
  augment: true,
  label_smoothing: 0.2,
  limit_train: null,
};

export const PRESETS = {
  cifar: [
    { id: "cifar2", label: "CIFAR-2: airplanes or birds, the book's convnet", params: CIFAR2_BOOK_CONVNET },
    { id: "cifar10", label: "CIFAR-10: all ten classes, a small ResNet", params: CIFAR10_RESNET },
  ],
};

// What the form starts from for `kind`: the server's defaults, then the page's first preset.
export function formDefaults(kind, serverDefaults = {}) {
  return { ...serverDefaults, ...(PRESETS[kind]?.[0]?.params ?? {}) };
}

// The preset the parameters match, if any.
export function matchingPreset(kind, params) {
  return (PRESETS[kind] ?? []).find((preset) =>
    Object.entries(preset.params).every(([name, value]) => JSON.stringify(params[name] ?? null) === JSON.stringify(value)),
  );
}

// Training images per second measured on a 2-core x86_64 CPU (README, "Benchmarks: CIFAR training
// core": the playground's pipeline with flips and crops, median of 5 rounds; fc was not measured).
const CPU_IMAGES_PER_SECOND = { conv: 2700, resnet: 700 };
const TRAIN_IMAGES = { cifar10: 50_000, cifar2: 10_000 };

// {seconds, head, detail, text} for a CIFAR run (head: the figure; detail: how it was reckoned),
// null for the other kinds.
export function estimateTraining(kind, params, device) {
  if (kind !== "cifar") return null;
  const rate = CPU_IMAGES_PER_SECOND[params.model];
  const perEpoch = Math.min(params.limit_train ?? Infinity, TRAIN_IMAGES[params.dataset] ?? 50_000);
  const epochs = params.epochs;
  if (!rate || !Number.isFinite(perEpoch) || !(epochs > 0)) {
    const text = `No time estimate for the ${params.model} net: its speed was not measured.`;
    return { seconds: null, head: text, detail: "", text };
  }
  const seconds = (epochs * perEpoch) / rate;
  const where = device && device.startsWith("cuda") ? " (measured on a CPU; a GPU is faster)" : "";
  const head = `Estimate: about ${roughDuration(seconds)} of training${where}`;
  const detail =
    `: ${epochs} epoch${epochs === 1 ? "" : "s"} × ${perEpoch.toLocaleString("en")} images at the ` +
    `${rate.toLocaleString("en")} images/s measured for ${params.model} on a 2-core CPU, plus a test pass after each epoch.`;
  return { seconds, head, detail, text: head + detail };
}

function roughDuration(seconds) {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds / 5) * 5)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
