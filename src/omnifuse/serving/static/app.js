// The omnifuse web page: builds a form from GET /v1/model, posts one row to /v1/predict and /v1/explain,
// and draws the prediction, the class probabilities and the per-input contributions. Plain JS, no build.
// URLs are relative ("v1/model", not "/v1/model") so that the page also works behind a proxy path prefix.
"use strict";

(function () {
  const KEY_STORAGE = "omnifuse.apiKey";
  const TYPE_HINTS = {
    text: "text",
    image: "image file",
    audio: "audio file",
    numeric: "number",
    categorical: "category",
  };
  const HIDDEN_METRICS = new Set(["n", "best_epoch"]);
  const state = { model: null, busy: false };
  const $ = (id) => document.getElementById(id);

  /** An error answered by the API: {"error": {message, row, column, fix}} plus the HTTP status. */
  class ApiError extends Error {
    constructor(status, detail) {
      super(detail.message || "request failed");
      this.status = status;
      this.row = detail.row ?? null;
      this.column = detail.column ?? null;
      this.fix = detail.fix ?? null;
    }
  }

  // ---------------------------------------------------------------- HTTP

  function apiKey() {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  }

  async function api(path, body) {
    const headers = { Accept: "application/json" };
    const key = apiKey();
    if (key) headers.Authorization = "Bearer " + key;
    const init = { method: body === undefined ? "GET" : "POST", headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, {
        message: "cannot reach the server (" + err.message + ")",
        fix: "check that `omnifuse serve` is still running, then reload the page",
      });
    }
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = payload && payload.error ? payload.error : { message: response.statusText };
      throw new ApiError(response.status, detail);
    }
    return payload;
  }

  // ---------------------------------------------------------------- errors and status

  const STATUS_TITLES = {
    0: "Server unreachable",
    400: "Bad request",
    401: "Unauthorized",
    413: "Too large",
    422: "Invalid input",
    503: "Not ready",
    504: "Timed out",
  };

  function showError(err) {
    const box = $("error");
    const status = err instanceof ApiError ? err.status : null;
    const title = STATUS_TITLES[status] || "Error";
    $("error-title").textContent = status ? `${title} (${status})` : title;
    $("error-message").textContent = err.message;
    const details = $("error-details");
    details.replaceChildren();
    const rows = [
      ["Row", err.row],
      ["Column", err.column],
      ["Fix", err.fix],
    ];
    for (const [name, value] of rows) {
      if (value === null || value === undefined || value === "") continue;
      details.append(el("dt", {}, name), el("dd", {}, String(value)));
    }
    if (status === 401) {
      details.append(el("dt", {}, "Hint"), el("dd", {}, "enter the API key at the top of the page"));
    }
    box.dataset.status = status === null ? "" : String(status);
    box.dataset.column = err.column || "";
    box.hidden = false;
    if (err.column) markField(err.column);
    box.scrollIntoView({ block: "nearest" });
  }

  function clearError() {
    $("error").hidden = true;
    for (const node of document.querySelectorAll(".field.invalid")) node.classList.remove("invalid");
  }

  function markField(column) {
    const field = document.querySelector(`.field[data-column="${CSS.escape(column)}"]`);
    if (field) field.classList.add("invalid");
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  // ---------------------------------------------------------------- small DOM helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  /** The element id of a column's input: `col-<name>` with characters unsafe in a CSS id replaced by _. */
  function fieldId(name) {
    return "col-" + String(name).replace(/[^A-Za-z0-9_-]/g, "_");
  }

  function formatNumber(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
    const size = Math.abs(value);
    if (size !== 0 && (size >= 1e6 || size < 1e-3)) return value.toExponential(3);
    return String(parseFloat(value.toFixed(4)));
  }

  function formatMetric(value) {
    if (Number.isInteger(value) && Math.abs(value) > 1) return String(value);
    return Math.abs(value) < 1000 ? value.toFixed(3) : formatNumber(value);
  }

  function percent(p, digits = 1) {
    return (p * 100).toFixed(digits) + "%";
  }

  function formatPrediction(value) {
    if (Array.isArray(value)) return value.length ? value.join(", ") : "(no class)";
    if (typeof value === "number") return formatNumber(value);
    return String(value);
  }

  // ---------------------------------------------------------------- model summary

  function renderSummary(model) {
    document.title = `${model.name} · omnifuse`;
    $("model-name").textContent = model.name;
    const task = $("model-task");
    task.textContent = model.task;
    task.hidden = false;
    const classes = model.classes && model.classes.length ? ` · classes: ${model.classes.join(", ")}` : "";
    $("model-label").textContent = `Predicts “${model.label}”${classes}`;
    renderMetrics(model.metrics || {});
    if (model.version) $("version").textContent = `omnifuse ${model.version}`;
  }

  function renderMetrics(metrics) {
    const box = $("metrics");
    box.replaceChildren();
    const scalars = Object.entries(metrics).filter(
      ([name, value]) => typeof value === "number" && !HIDDEN_METRICS.has(name),
    );
    if (scalars.length === 0) {
      box.append(el("div", { className: "metric muted" }, "no evaluation metrics recorded"));
      return;
    }
    const split = typeof metrics.split === "string" ? metrics.split : "evaluation";
    const rows = typeof metrics.n === "number" ? ` · ${metrics.n} rows` : "";
    box.append(el("div", { className: "metric split" }, el("dt", {}, "split"), el("dd", {}, split + rows)));
    for (const [name, value] of scalars.slice(0, 6)) {
      box.append(
        el(
          "div",
          { className: "metric" },
          el("dt", {}, name.replace(/_/g, " ")),
          el("dd", {}, formatMetric(value)),
        ),
      );
    }
  }

  // ---------------------------------------------------------------- form generation

  function buildForm(columns) {
    const fields = $("fields");
    fields.replaceChildren(...columns.map(buildField));
    $("predict").disabled = false;
  }

  function buildField(column) {
    const id = fieldId(column.name);
    const optional = column.allow_missing ? el("span", { className: "optional" }, "optional") : null;
    const label = el(
      "label",
      { for: id },
      el("span", { className: "field-name" }, column.name),
      el("span", { className: "type-tag" }, TYPE_HINTS[column.type] || column.type),
      optional,
    );
    const attrs = { className: `field field-${column.type}`, dataset: { column: column.name } };
    const field = el("div", attrs, label);
    const control = buildControl(column, id);
    field.append(control);
    if (column.type === "image" || column.type === "audio") field.append(buildMediaPreview(column, control));
    return field;
  }

  function buildControl(column, id) {
    const common = { id, name: column.name, dataset: { column: column.name, type: column.type } };
    switch (column.type) {
      case "text":
        return el("textarea", { ...common, rows: 3, placeholder: "Type some text…" });
      case "image":
        return el("input", { ...common, type: "file", accept: "image/*" });
      case "audio":
        return el("input", { ...common, type: "file", accept: "audio/*" });
      case "numeric":
        return el("input", { ...common, type: "number", step: "any", inputmode: "decimal" });
      case "categorical":
        return buildCategorical(column, common);
      default:
        return el("input", { ...common, type: "text" });
    }
  }

  function buildCategorical(column, common) {
    if (!Array.isArray(column.categories) || column.categories.length === 0) {
      return el("input", { ...common, type: "text", placeholder: "a category" });
    }
    const select = el("select", common, el("option", { value: "" }, "— choose —"));
    for (const category of column.categories) {
      select.append(el("option", { value: category }, category));
    }
    return select;
  }

  function buildMediaPreview(column, input) {
    const previewId = `preview-${fieldId(column.name).slice(4)}`;
    const isImage = column.type === "image";
    const media = isImage
      ? el("img", { id: previewId, className: "image-preview", alt: `preview of ${column.name}` })
      : el("audio", { id: previewId, className: "audio-preview", controls: true });
    const caption = el("div", { className: "file-caption muted small" });
    const box = el("div", { className: "media-preview", hidden: true }, media, caption);
    media.addEventListener("error", () => {
      if (!media.getAttribute("src")) return;
      media.hidden = true;
      caption.textContent += " · cannot be previewed";
    });
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      if (media.src) URL.revokeObjectURL(media.src);
      if (!file) {
        media.removeAttribute("src");
        box.hidden = true;
        return;
      }
      media.hidden = false;
      media.src = URL.createObjectURL(file);
      caption.textContent = `${file.name} · ${(file.size / 1024).toFixed(1)} KB`;
      box.hidden = false;
    });
    return box;
  }

  // ---------------------------------------------------------------- reading the form

  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  async function readValue(column) {
    const input = $(fieldId(column.name));
    switch (column.type) {
      case "image":
      case "audio":
        return input.files && input.files[0] ? readFile(input.files[0]) : null;
      case "numeric":
        if (input.validity.badInput) {
          throw new ApiError(0, {
            message: `column '${column.name}': the value is not a number`,
            column: column.name,
            fix: "type a number such as 3.5, or leave the field empty",
          });
        }
        return input.value === "" ? null : Number(input.value);
      default:
        return input.value === "" ? null : input.value;
    }
  }

  async function readRow() {
    const row = {};
    for (const column of state.model.columns) row[column.name] = await readValue(column);
    return row;
  }

  // ---------------------------------------------------------------- results

  function renderPrediction(prediction, explanation) {
    $("prediction").textContent = formatPrediction(prediction.prediction);
    $("prediction").dataset.value = JSON.stringify(prediction.prediction);
    const regression = state.model.task === "regression";
    $("prediction-caption").textContent = regression ? `Predicted ${state.model.label}` : "Predicted class";
    const probs = prediction.probabilities;
    let confidence = "";
    if (!regression && probs && typeof prediction.prediction !== "object") {
      const p = probs[String(prediction.prediction)];
      if (typeof p === "number") confidence = `${percent(p)} probability`;
    }
    $("confidence").textContent = confidence;
    renderProbabilities(regression ? null : probs, prediction.prediction);
    renderContributions(explanation);
    $("result").hidden = false;
    $("placeholder").hidden = true;
    if (window.matchMedia("(max-width: 820px)").matches) $("result").scrollIntoView({ block: "start" });
  }

  function hideResult() {
    $("result").hidden = true;
    $("placeholder").hidden = false;
  }

  function renderProbabilities(probs, predicted) {
    const block = $("probabilities-block");
    const box = $("probabilities");
    box.replaceChildren();
    if (!probs) {
      block.hidden = true;
      return;
    }
    block.hidden = false;
    const chosen = new Set((Array.isArray(predicted) ? predicted : [predicted]).map(String));
    const sorted = Object.entries(probs).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of sorted) {
      const fill = el("div", { className: "bar-fill" });
      fill.style.width = percent(Math.max(0, Math.min(1, p)), 2);
      box.append(
        el(
          "div",
          {
            className: chosen.has(name) ? "bar-row chosen" : "bar-row",
            role: "listitem",
            dataset: { class: name, probability: String(p) },
          },
          el("span", { className: "bar-label", title: name }, name),
          el("div", { className: "bar-track", "aria-hidden": "true" }, fill),
          el("span", { className: "bar-value" }, percent(p)),
        ),
      );
    }
  }

  function renderContributions(explanation) {
    const block = $("contributions-block");
    const box = $("contributions");
    box.replaceChildren();
    if (!explanation || !explanation.inputs) {
      block.hidden = true;
      return;
    }
    block.hidden = false;
    const regression = state.model.task === "regression";
    $("contributions-help").textContent = regression
      ? "How much each input moves the prediction (the prediction minus the prediction without the input):" +
        " green inputs raised it, red ones lowered it."
      : "How much each input adds to the predicted class's probability (the probability minus the" +
        " probability without the input): green inputs supported the prediction, red ones argued against it.";
    const size = (entry) => Math.abs(entry[1].delta || 0);
    const entries = Object.entries(explanation.inputs).sort((a, b) => size(b) - size(a));
    const scale = Math.max(1e-9, ...entries.map(size));
    for (const [name, value] of entries) box.append(contributionRow(name, value, scale, regression));
  }

  /** The input's name; "tabular" (all numeric and categorical columns together) lists its columns. */
  function contributionLabel(name) {
    const tabular = state.model.columns
      .filter((c) => c.type === "numeric" || c.type === "categorical")
      .map((c) => c.name);
    const isTabular = name === "tabular" && !state.model.columns.some((c) => c.name === name);
    const detail = isTabular && tabular.length ? tabular.join(", ") : null;
    return el(
      "span",
      { className: "contrib-label", title: detail ? `${name}: ${detail}` : name },
      el("span", { className: "contrib-name" }, name),
      detail ? el("span", { className: "contrib-detail muted" }, detail) : null,
    );
  }

  function contributionRow(name, value, scale, regression) {
    const delta = typeof value.delta === "number" ? value.delta : 0; // null: not finite
    const sign = delta > 0 ? "positive" : delta < 0 ? "negative" : "zero";
    const fill = el("div", { className: `contrib-fill ${sign}` });
    const axis = el("div", { className: "axis" });
    fill.style.width = ((Math.abs(delta) / scale) * 50).toFixed(2) + "%";
    const shown = regression ? formatNumber(delta) : (delta * 100).toFixed(1) + " pts";
    const weight =
      value.weight == null
        ? null
        : el("span", { className: "weight", title: "fusion weight" }, `weight ${value.weight.toFixed(2)}`);
    return el(
      "div",
      {
        className: `contrib-row ${sign}`,
        role: "listitem",
        dataset: { input: name, delta: String(delta), weight: String(value.weight ?? "") },
      },
      contributionLabel(name),
      el("div", { className: "contrib-track", "aria-hidden": "true" }, axis, fill),
      el("span", { className: "contrib-value" }, (delta > 0 ? "+" : "") + shown, weight),
    );
  }

  // ---------------------------------------------------------------- actions

  async function loadModel() {
    clearError();
    try {
      const model = await api("v1/model");
      renderSummary(model);
      if (model.task === "contrastive") {
        // an embedding model: nothing to predict, so no form (Predict stays disabled)
        const where = model.search
          ? "Search with it through POST v1/search (see /docs)."
          : "Start the server with --index DIR to search with it through POST v1/search.";
        $("fields").replaceChildren(
          el("p", { id: "no-predict", className: "muted" },
            "This is a contrastive (embedding) model: it does not predict. " + where),
        );
        return;
      }
      state.model = model;
      buildForm(model.columns);
    } catch (err) {
      $("model-name").textContent = "Model unavailable";
      const hint =
        err.status === 401
          ? "Enter the API key above to load the model's inputs."
          : "The model's inputs could not be loaded.";
      $("fields").replaceChildren(el("p", { className: "muted" }, hint));
      showError(err);
    }
  }

  async function predict(event) {
    event.preventDefault();
    if (state.busy || !state.model) return;
    state.busy = true;
    $("predict").disabled = true;
    clearError();
    setStatus("Predicting…");
    try {
      const body = { rows: [await readRow()] };
      const predicted = await api("v1/predict", body);
      const explained = state.model.explain === false ? null : await api("v1/explain", body);
      renderPrediction(predicted.predictions[0], explained ? explained.explanations[0] : null);
      setStatus("");
    } catch (err) {
      setStatus("");
      hideResult();
      showError(err);
    } finally {
      state.busy = false;
      $("predict").disabled = false;
    }
  }

  function saveKey(event) {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    if (!state.model) loadModel();
    else clearError();
  }

  function resetForm() {
    for (const box of document.querySelectorAll(".media-preview")) box.hidden = true;
    hideResult();
    clearError();
  }

  function start() {
    $("api-key").value = apiKey();
    $("key-form").addEventListener("submit", saveKey);
    $("input-form").addEventListener("submit", predict);
    $("input-form").addEventListener("reset", resetForm);
    loadModel();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
