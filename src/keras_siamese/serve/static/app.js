// The page's behaviour: drop or pick images, then ask the service. Plain JavaScript, no build step.
"use strict";

let threshold = null;
const latest = { compare: 0, search: 0 };  // each panel shows only the answer to its latest request

function text(id, message, cls) {
  const element = document.getElementById(id);
  element.textContent = message;
  element.className = "result" + (cls ? " " + cls : "");
}

async function call(path, form) {
  const response = await fetch(path, { method: "POST", body: form });
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function describeThreshold() {
  return threshold === null ? "no calibrated threshold" : "threshold " + threshold.toFixed(4);
}

async function loadInfo() {
  try {
    const info = await (await fetch("/info")).json();
    threshold = info.threshold;
    const gallery = info.gallery ? `gallery of ${info.gallery.size} images (${info.gallery.search} search)` : "no gallery";
    document.getElementById("model-info").textContent =
      `input ${info.input_shape.join("×")}, ${describeThreshold()}, ${gallery}, backend ${info.backend}`;
    if (!info.gallery) text("search-result", "This server has no gallery (start it with --gallery).");
  } catch (error) {
    document.getElementById("model-info").textContent = "cannot reach the service: " + error.message;
  }
}

function chosen(id) {
  const input = document.getElementById(id);
  return input.files && input.files[0];
}

async function compare() {
  const a = chosen("compare-a"), b = chosen("compare-b");
  if (!a || !b) { text("compare-result", "Now the other image."); return; }
  text("compare-result", "comparing…");
  const form = new FormData();
  form.append("image_a", a);
  form.append("image_b", b);
  const request = ++latest.compare;
  try {
    const result = await call("/compare", form);
    if (request !== latest.compare) return;
    const decision = result.decision ? `${result.decision} ` : "";
    text("compare-result", `${decision}— distance ${result.distance.toFixed(4)} (${describeThreshold()})`,
         result.decision || "");
  } catch (error) {
    if (request === latest.compare) text("compare-result", "error: " + error.message, "error");
  }
}

async function search() {
  const image = chosen("search-image");
  if (!image) return;
  const list = document.getElementById("neighbours");
  list.replaceChildren();
  text("search-result", "searching…");
  const form = new FormData();
  form.append("image", image);
  form.append("k", document.getElementById("search-k").value || "5");
  const request = ++latest.search;
  try {
    const result = await call("/search", form);
    if (request !== latest.search) return;
    list.replaceChildren();
    let heading = result.decision === "match" ? `match: ${result.label ?? result.neighbours[0].id}`
                : result.decision === "unknown" ? "unknown: no gallery image within the threshold" : "nearest images";
    text("search-result", `${heading} (${describeThreshold()})`, result.decision || "");
    for (const neighbour of result.neighbours) {
      const item = document.createElement("li");
      item.className = "neighbour" + (threshold !== null && neighbour.distance < threshold ? " within" : "");
      let picture;
      if (neighbour.image_url) {
        picture = document.createElement("img");
        picture.src = neighbour.image_url;
        picture.alt = neighbour.id;
      } else {
        picture = document.createElement("div");
        picture.className = "no-image";
        picture.textContent = "no image";
      }
      const label = document.createElement("div");
      label.className = "label";
      label.textContent = neighbour.label ?? neighbour.id;
      const distance = document.createElement("div");
      distance.className = "distance";
      distance.textContent = neighbour.distance.toFixed(4);
      item.append(picture, label, distance);
      list.append(item);
    }
  } catch (error) {
    if (request === latest.search) text("search-result", "error: " + error.message, "error");
  }
}

function preview(drop, file) {
  const img = drop.querySelector("img");
  img.src = URL.createObjectURL(file);
  drop.classList.add("loaded");
}

for (const drop of document.querySelectorAll(".drop")) {
  const input = drop.querySelector("input");
  const act = input.id === "search-image" ? search : compare;
  input.addEventListener("change", () => { if (input.files[0]) { preview(drop, input.files[0]); act(); } });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      input.dispatchEvent(new Event("change"));
    }
  });
}
document.getElementById("search-k").addEventListener("change", search);
loadInfo();
