// The chat page of a generation model: OpenAI's chat API (POST /v1/chat/completions, streamed), the
// history kept here, an image and an audio file attached for the next turns (sent as a data URL / base64).
"use strict";

const state = { model: "", history: [], image: null, audio: null, busy: false };
const $ = (id) => document.getElementById(id);

function headers() {
  const key = $("api-key").value.trim();
  const out = { "Content-Type": "application/json" };
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  div.textContent = text;
  $("history").appendChild(div);
  return div;
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);  // a data: URL
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

async function attach(kind) {
  const file = $(kind).files[0];
  state[kind] = file ? { name: file.name, url: await readFile(file) } : null;
  const names = ["image", "audio"].filter((k) => state[k]).map((k) => `${k}: ${state[k].name}`);
  $("attached").textContent = names.length ? `attached ${names.join(", ")}` : "";
}

function userMessage(text) {
  const parts = [];
  if (state.image) parts.push({ type: "image_url", image_url: { url: state.image.url } });
  if (state.audio) {
    const [head, data] = state.audio.url.split(",", 2);
    const format = (head.match(/audio\/(x-)?(\w+)/) || [])[2] || "wav";
    parts.push({ type: "input_audio", input_audio: { data, format } });
  }
  parts.push({ type: "text", text });
  return { role: "user", content: parts };
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error ? body.error.message : JSON.stringify(body);
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

async function stream(response, onPiece) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 2);
      if (!event.startsWith("data:")) continue;
      const data = event.slice(5).trim();
      if (data === "[DONE]") return;
      const delta = JSON.parse(data).choices[0].delta;
      if (delta.content) onPiece(delta.content);
    }
  }
}

async function send(event) {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || state.busy) return;
  state.busy = true;
  showError("");
  bubble("user", text);
  const answer = bubble("assistant", "");
  answer.classList.add("writing");
  const messages = [...state.history, userMessage(text)];
  try {
    const response = await fetch("v1/chat/completions", {
      method: "POST", headers: headers(),
      body: JSON.stringify({ model: state.model, messages, stream: true }),
    });
    if (!response.ok) throw new Error(await errorText(response));
    await stream(response, (piece) => { answer.textContent += piece; });
    state.history.push({ role: "user", content: text }, { role: "assistant", content: answer.textContent });
    $("prompt").value = "";
  } catch (err) {
    answer.remove();
    showError(err.message);
  } finally {
    answer.classList.remove("writing");
    state.busy = false;
  }
}

function reset() {
  state.history = [];
  $("history").textContent = "";
  showError("");
}

async function start() {
  $("chat-form").addEventListener("submit", send);
  $("reset").addEventListener("click", reset);
  $("image").addEventListener("change", () => attach("image"));
  $("audio").addEventListener("change", () => attach("audio"));
  try {
    const response = await fetch("v1/models", { headers: headers() });
    if (!response.ok) throw new Error(await errorText(response));
    state.model = (await response.json()).data[0].id;
    $("model-name").textContent = state.model;
  } catch (err) {
    $("model-name").textContent = "omnifuse chat";
    showError(err.message);
  }
}

start();
