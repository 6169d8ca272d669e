// Inside a CIFAR run's net for one image (POST /api/jobs/{id}/inside, computed by a worker): the
// picture as the net saw it (32x32) beside its saliency map (which pixels the predicted class's
// score is most sensitive to) and its Grad-CAM (which regions of the last convolution's maps speak
// for that class), the first convolution's filters, and each convolution's strongest channels.
// Every map is scaled to its own range; its title says what black and white stand for.

import { api } from "./api.js";
import { el, num } from "./format.js";

const SHOWN = 96; // CSS pixels per picture side (the PNGs are 32x32 or smaller: drawn pixelated)

function picture(src, alt, size = SHOWN) {
  return el("img", { class: "pixelated", src, alt, width: String(size), height: String(size) });
}

function figure(src, alt, caption, size) {
  return el("figure", { class: "inside-map" }, picture(src, alt, size), el("figcaption", { class: "small" }, caption));
}

export async function showInside(container, jobId, file) {
  container.replaceChildren(el("p", { class: "muted" }, "Looking inside the net…"));
  container.dataset.state = "loading";
  let seen;
  try {
    seen = await api.inside(jobId, file);
  } catch (error) {
    container.replaceChildren(el("p", { class: "field-error" }, error.message));
    container.dataset.state = "error";
    return null;
  }
  const cam = seen.grad_cam;
  const parts = [
    el("h3", {}, "Inside the net"),
    el(
      "div",
      { class: "inside-row" },
      figure(seen.image, "the picture at 32 by 32 pixels, as the net sees it", "what the net sees (32×32)"),
      figure(
        seen.saliency.png,
        `saliency map for ${seen.label}`,
        `where the score of “${seen.label}” is most sensitive (white: the largest gradient)`,
      ),
      cam ? figure(
        cam.png,
        `Grad-CAM map for ${seen.label}`,
        `Grad-CAM: the regions that speak for “${seen.label}” (black ${num(cam.low)}, white ${num(cam.high)})`,
      ) : null,
      cam ? figure(cam.overlay, `the picture lit by its Grad-CAM for ${seen.label}`, "the picture, dimmed where Grad-CAM is low") : null,
    ),
    cam
      ? el("p", { class: "help", dataset: { gradCam: cam.layer } },
        `Saliency is the gradient at each pixel: fine but noisy. Grad-CAM weighs the last convolution's maps (${cam.layer}: ` +
        `${cam.layer_shape[0]} of ${cam.layer_shape[1]}×${cam.layer_shape[2]}) by how much the score grows with each, keeps what is positive ` +
        "and stretches it to 32×32: coarse, but about whole regions.")
      : null,
  ];
  if (seen.filters.length) {
    parts.push(
      el("h4", {}, `First layer's filters (${seen.filters.length}, largest first)`),
      el("p", { class: "help" }, "Each 3×3 kernel in colour: grey is zero, brighter red means it looks for red there, darker for its absence."),
      el(
        "div",
        { class: "inside-row filters", dataset: { filters: String(seen.filters.length) } },
        ...seen.filters.map((f) => picture(f.png, `filter ${f.channel}, norm ${num(f.norm)}`, 40)),
      ),
    );
  }
  for (const layer of seen.layers) {
    const [channels, height, width] = layer.shape;
    parts.push(
      el("h4", {}, `${layer.name}: ${channels} maps of ${height}×${width}, the ${layer.channels.length} strongest`),
      el(
        "div",
        { class: "inside-row", dataset: { layer: layer.name } },
        ...layer.channels.map((c) =>
          figure(c.png, `${layer.name} channel ${c.channel}`, `#${c.channel}: mean ${num(c.mean)} (black ${num(c.low)}, white ${num(c.high)})`, 64),
        ),
      ),
    );
  }
  if (!seen.layers.length) {
    parts.push(el("p", { class: "muted" }, "This net has no convolutions (the book's fully connected model): every pixel goes straight into one big linear layer. The saliency map above still shows what it looks at."),
      el("p", { class: "muted", dataset: { gradCam: "" } }, `No Grad-CAM: ${seen.grad_cam_reason ?? "this net has no convolution"}.`));
  }
  container.replaceChildren(...parts.filter(Boolean)); // replaceChildren would write a null as text
  container.dataset.state = "shown";
  return seen;
}
