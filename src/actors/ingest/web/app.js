// The mediajet web page: log in, upload (picker or drag and drop) with a
// progress bar, and a live list of the user's jobs fed by each job's
// Server-Sent Events. The token lives in sessionStorage, so it ends with the
// tab. Requests carry it in an Authorization header, which is why events and
// downloads are read with fetch rather than EventSource or plain links.
"use strict";

const TERMINAL = new Set(["completed", "failed", "canceled"]);
const $ = (id) => document.getElementById(id);
const jobs = new Map();
const following = new Set();
let token = sessionStorage.getItem("mediajet.token");

function show() {
  $("login").hidden = Boolean(token);
  $("app").hidden = !token;
  $("logout").hidden = !token;
  if (token) loadJobs();
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${token}` };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    logout();
    throw new Error("Your session has ended; log in again.");
  }
  return response;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error.message;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function logout() {
  token = null;
  sessionStorage.removeItem("mediajet.token");
  jobs.clear();
  $("jobs").replaceChildren();
  show();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const response = await fetch("/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: $("email").value, password: $("password").value }),
  });
  if (!response.ok) {
    $("login-error").textContent = await errorText(response);
    return;
  }
  token = (await response.json()).access_token;
  sessionStorage.setItem("mediajet.token", token);
  $("password").value = "";
  show();
});
$("logout").addEventListener("click", logout);

async function loadJobs() {
  try {
    const response = await api("/v1/jobs?limit=50");
    if (!response.ok) throw new Error(await errorText(response));
    const list = await response.json();
    for (const job of list.reverse()) update(job);
  } catch (error) {
    $("app-error").textContent = error.message;
  }
}

// Uploads: the drop zone takes a dropped file, or opens the picker.
const zone = $("drop-zone");
zone.addEventListener("click", (event) => {
  if (!event.target.closest("select, label")) $("file-input").click();
});
zone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") $("file-input").click();
});
zone.addEventListener("dragover", (event) => {
  event.preventDefault();
  zone.classList.add("over");
});
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) upload(file);
});
$("file-input").addEventListener("change", () => {
  const file = $("file-input").files[0];
  $("file-input").value = "";
  if (file) upload(file);
});

// XMLHttpRequest, because fetch cannot report upload progress.
function upload(file) {
  $("app-error").textContent = "";
  const form = new FormData();
  form.append("format", $("format").value);
  if ($("bitrate").value && !["flac", "wav"].includes($("format").value)) {
    form.append("bitrate", $("bitrate").value);
  }
  form.append("file", file);
  const request = new XMLHttpRequest();
  request.open("POST", "/v1/jobs");
  request.setRequestHeader("Authorization", `Bearer ${token}`);
  $("upload").hidden = false;
  $("upload-name").textContent = file.name;
  const progress = (fraction) => {
    $("upload-bar").style.width = `${Math.round(fraction * 100)}%`;
    $("upload-percent").textContent = `${Math.round(fraction * 100)}%`;
  };
  progress(0);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) progress(event.loaded / event.total);
  });
  request.addEventListener("load", () => {
    $("upload").hidden = true;
    let body = null;
    try { body = JSON.parse(request.responseText); } catch { body = null; }
    if (request.status === 202 && body) {
      update(body);
    } else if (request.status === 401) {
      logout();
    } else {
      $("app-error").textContent = body?.error?.message || `Upload failed (${request.status})`;
    }
  });
  request.addEventListener("error", () => {
    $("upload").hidden = true;
    $("app-error").textContent = "The upload broke off; try again.";
  });
  request.send(form);
}

function describe(job) {
  if (job.state === "queued") {
    return job.queue_position > 1 ? `${job.queue_position - 1} ahead in the queue` : "next in the queue";
  }
  if (job.state === "running") {
    const parts = [`${Math.round(job.progress)}%`];
    if (job.speed) parts.push(`${job.speed.toFixed(1)}× real time`);
    if (job.eta_seconds != null) parts.push(`${Math.round(job.eta_seconds)} s left`);
    return parts.join(" · ");
  }
  if (job.state === "completed" && job.output) {
    const kb = Math.round(job.output.bytes / 1024);
    return `${job.output.filename} · ${kb} KiB · ${job.output.duration_seconds.toFixed(1)} s`;
  }
  if (job.state === "failed") return job.error || "failed";
  return job.state;
}

function update(job) {
  jobs.set(job.id, job);
  let row = document.querySelector(`li[data-job-id="${job.id}"]`);
  if (!row) {
    row = document.createElement("li");
    row.dataset.jobId = job.id;
    row.innerHTML = `
      <div class="job-title"><span class="name"></span><span class="state"></span></div>
      <div class="bar job-bar"><div></div></div>
      <div class="job-detail"></div>
      <div class="job-actions">
        <button class="download">Download</button>
        <button class="cancel secondary">Cancel</button>
        <button class="delete secondary">Delete</button>
      </div>`;
    row.querySelector(".download").addEventListener("click", () => download(job.id));
    row.querySelector(".cancel").addEventListener("click", () => remove(job.id));
    row.querySelector(".delete").addEventListener("click", () => remove(job.id));
    $("jobs").prepend(row);
  }
  $("no-jobs").hidden = jobs.size > 0;
  row.className = job.state;
  row.querySelector(".name").textContent = `${job.filename} → ${job.format}`;
  const state = row.querySelector(".state");
  state.textContent = job.state;
  state.className = `state ${job.state}`;
  const percent = job.state === "completed" ? 100 : job.progress;
  row.querySelector(".job-bar > div").style.width = `${percent}%`;
  row.querySelector(".job-detail").textContent = describe(job);
  row.querySelector(".download").hidden = job.state !== "completed";
  row.querySelector(".cancel").hidden = TERMINAL.has(job.state);
  row.querySelector(".delete").hidden = !TERMINAL.has(job.state);
  if (!TERMINAL.has(job.state)) follow(job.id);
}

// Reads the job's event stream until it ends; a broken stream is resumed.
async function follow(id) {
  if (following.has(id)) return;
  following.add(id);
  try {
    while (token && !TERMINAL.has(jobs.get(id)?.state)) {
      try {
        const response = await api(`/v1/jobs/${id}/events`);
        if (response.status === 404) break;
        if (!response.ok) throw new Error(await errorText(response));
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
            const name = (block.split("\n").find((l) => l.startsWith("event:")) || "").slice(6).trim();
            if (name === "deleted") {
              forget(id);
              return;
            }
            if (data) update(JSON.parse(data));
          }
        }
      } catch (error) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  } finally {
    following.delete(id);
  }
}

function forget(id) {
  jobs.delete(id);
  document.querySelector(`li[data-job-id="${id}"]`)?.remove();
  $("no-jobs").hidden = jobs.size > 0;
}

// Cancels an unfinished job, deletes a finished one.
async function remove(id) {
  const response = await api(`/v1/jobs/${id}`, { method: "DELETE" });
  if (response.status === 202) update(await response.json());
  else if (response.status === 204) forget(id);
  else $("app-error").textContent = await errorText(response);
}

async function download(id) {
  const job = jobs.get(id);
  const response = await api(job.output.url);
  if (!response.ok) {
    $("app-error").textContent = await errorText(response);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = job.output.filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

show();
