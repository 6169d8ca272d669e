// The start page's own defaults and presets, laid over the server's defaults (GET /api/kinds), and
// the time estimate shown before Train.
//
// Chapter 7 starts where the book does: CIFAR-2 (airplanes against birds) with the book's convnet,
// trained with the fast recipe (bench/cifar_accuracy.py part 2: 6 one-cycle epochs, 0.89 validation
// accuracy in about 21 s on a 2-core CPU). CIFAR-10 with the ResNet (85% in about 10 min in float32)
// and with airbench's net (90% in under 10 min with bfloat16) are presets. The server's own defaults (its schema) stay as they are.

// The speedrun's switches as the server's defaults have them: the presets below that do not use
// them say so, so that picking one after the airbench preset does not keep its switches.
const SWITCHES_AS_DEFAULT = {
  width: null,
  momentum: 0.9,
  bias_lr_scale: 1,
  flip: "random",
  lookahead: false,
  tta: "auto",
  mixed_precision: false,
};
const CIFAR2_BOOK_CONVNET = {
  ...SWITCHES_AS_DEFAULT,
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
  ...SWITCHES_AS_DEFAULT,
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

// 90% on CIFAR-10 in 10 minutes of a 2-core CPU with bfloat16 instructions (AMX): cifar10-airbench's
// net and optimiser (bench/cifar_accuracy.py --recipe cpu). Without bfloat16 hardware, mixed
// precision is slower than float32: there this takes about half an hour (see the estimate).
const CIFAR10_AIRBENCH = {
  dataset: "cifar10",
  model: "airbench",
  width: null,
  epochs: 12,
  batch_size: 1024,
  lr: 1.5,
  momentum: 0.85,
  weight_decay: 0.00133,
  bias_lr_scale: 64,
  optimizer: "nesterov_onecycle",
  augment: true,
  label_smoothing: 0.2,
  flip: "alternate",
  lookahead: true,
  tta: "flip",
  mixed_precision: true,
  limit_train: null,
};

export const PRESETS = {
  cifar: [
    { id: "cifar2", label: "CIFAR-2: airplanes or birds, the book's convnet", params: CIFAR2_BOOK_CONVNET },
    { id: "cifar10", label: "CIFAR-10: all ten classes, a small ResNet", params: CIFAR10_RESNET },
    { id: "airbench", label: "90% on all ten: cifar10-airbench's net and optimiser", params: CIFAR10_AIRBENCH },
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

// Training images per second measured on 2-core x86_64 CPUs (README, "Benchmarks: CIFAR training
// core": the playground's pipeline with flips and crops; fc was not measured). conv and resnet in
// float32 on an AMD EPYC VM; airbench on an Intel Xeon VM with AMX, in float32 and in bfloat16
// ("+bf16": mixed_precision, which only pays on a CPU with bfloat16 instructions).
const CPU_IMAGES_PER_SECOND = { conv: 2700, resnet: 700, airbench: 380, "airbench+bf16": 1100 };
const TRAIN_IMAGES = { cifar10: 50_000, cifar2: 10_000 };

// {seconds, head, detail, text} for a CIFAR run (head: the figure; detail: how it was reckoned),
// null for the other kinds.
export function estimateTraining(kind, params, device) {
  if (kind !== "cifar") return null;
  const net = params.model + (params.mixed_precision && params.model === "airbench" ? "+bf16" : "");
  const rate = CPU_IMAGES_PER_SECOND[net];
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
    `${rate.toLocaleString("en")} images/s measured for ${params.model}` +
    `${net.endsWith("+bf16") ? " in bfloat16 (a CPU with AMX; one without bfloat16 instructions is slower than in float32)" : ""}` +
    ` on a 2-core CPU, plus a test pass after each epoch.`;
  return { seconds, head, detail, text: head + detail };
}

function roughDuration(seconds) {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds / 5) * 5)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
