// The mediajet web page: log in, upload (picker or drag and drop) with a
// progress bar, resumable with tus (tus-js-client, served next to this
// script): pause and resume, and an upload cut off by a reload or a broken
// network goes on from where it stopped when the same file is picked again
// (its URL is kept in localStorage under the file's fingerprint); and a
// live list of the user's jobs fed by each job's
// Server-Sent Events. The tokens live in sessionStorage, so they end with the
// tab. Requests carry the access token in an Authorization header, which is
// why events and downloads are read with fetch rather than EventSource or
// plain links; when it runs out, the refresh token renews it.
"use strict";

const TERMINAL = new Set(["completed", "failed", "canceled"]);
const $ = (id) => document.getElementById(id);
const jobs = new Map();
const following = new Set();
let token = sessionStorage.getItem("mediajet.token");
let renewing = null;

function show() {
  $("login").hidden = Boolean(token);
  $("app").hidden = !token;
  $("logout").hidden = !token;
  if (token) {
    loadJobs();
    loadPresets();
    loadAccount();
  } else {
    hideAccount();
  }
}

function keep(tokens) {
  token = tokens.access_token;
  sessionStorage.setItem("mediajet.token", token);
  sessionStorage.setItem("mediajet.refresh", tokens.refresh_token);
  sessionStorage.setItem("mediajet.expires", String(Date.now() + tokens.expires_in * 1000));
}

// Spends the refresh token for new tokens. A refresh token is good once, so
// requests that find the token expired at the same moment share one renewal.
function renew() {
  renewing ??= (async () => {
    try {
      const response = await fetch("/v1/tokens/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: sessionStorage.getItem("mediajet.refresh") }),
      });
      if (!response.ok) return false;
      keep(await response.json());
      return true;
    } catch {
      return false;
    } finally {
      renewing = null;
    }
  })();
  return renewing;
}

// Renews ahead of a request that cannot simply be sent again (an upload).
async function renewIfExpiring() {
  if (Number(sessionStorage.getItem("mediajet.expires")) - Date.now() < 60_000) await renew();
}

async function api(path, options = {}) {
  const send = () => fetch(path, {
    ...options,
    headers: { ...(options.headers || {}), Authorization: `Bearer ${token}` },
  });
  let response = await send();
  if (response.status === 401 && token && (await renew())) response = await send();
  if (response.status === 401) {
    forgetSession();
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

function forgetSession() {
  token = null;
  for (const key of ["mediajet.token", "mediajet.refresh", "mediajet.expires"]) {
    sessionStorage.removeItem(key);
  }
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
  keep(await response.json());
  $("password").value = "";
  show();
});

// Ends the session on the server too, so its tokens stop working at once.
$("logout").addEventListener("click", () => {
  const refresh = sessionStorage.getItem("mediajet.refresh");
  if (refresh) {
    fetch("/v1/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refresh }),
    }).catch(() => {});
  }
  forgetSession();
});

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

// The caller's presets, offered in the options panel.
async function loadPresets() {
  const response = await api("/v1/presets");
  if (!response.ok) return;
  const select = $("preset");
  select.replaceChildren(new Option("none", ""));
  for (const preset of await response.json()) select.append(new Option(preset.name, preset.name));
}

// The options the panel sets, as job option fields (tus metadata).
function chosenOptions() {
  const options = {};
  for (const name of ["preset", "loudness", "start", "end", "title", "artist", "album", "cover"]) {
    const value = $(name).value.trim();
    if (value) options[name] = value;
  }
  if ($("split").checked) options.split = "chapters";
  return options;
}

// The panel's options, and the format and bit rate above it, saved as a
// preset under a name the user gives.
$("save-preset").addEventListener("click", async () => {
  const name = prompt("Name of the preset (letters, digits, - and _):");
  if (!name) return;
  const body = { ...chosenOptions(), format: $("format").value };
  delete body.preset;
  if ($("bitrate").value && !["flac", "wav"].includes(body.format)) body.bitrate = $("bitrate").value;
  const response = await api(`/v1/presets/${encodeURIComponent(name)}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  $("app-error").textContent = response.ok ? "" : await errorText(response);
  await loadPresets();
});

// What a submission asks for: the format, the bit rate and the panel's
// options, as job fields (tus metadata, or the members of a JSON body).
function submission() {
  const format = $("format").value;
  const fields = { format, ...chosenOptions() };
  const first = {};
  if ($("bitrate").value && !["flac", "wav"].includes(format)) first.bitrate = $("bitrate").value;
  // Further outputs take the panel's options but not the bit rate, which
  // not every format takes: it goes into the first output only.
  const also = [...document.querySelectorAll("#also input:checked")].map((box) => box.value);
  if (also.length > 0) {
    fields.outputs = JSON.stringify([{ format, ...first }, ...also.map((f) => ({ format: f }))]);
  } else if (first.bitrate) {
    fields.bitrate = first.bitrate;
  }
  return fields;
}

// A video the service fetches from its address instead of an upload.
$("import-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("app-error").textContent = "";
  const response = await api("/v1/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ source_url: $("source-url").value.trim(), ...submission() }),
  });
  if (!response.ok) {
    $("app-error").textContent = await errorText(response);
    return;
  }
  $("source-url").value = "";
  update(await response.json());
});

// Uploads: the drop zone takes a dropped file, or opens the picker.
const zone = $("drop-zone");
zone.addEventListener("click", (event) => {
  if (!event.target.closest("select, label, input, button, details")) $("file-input").click();
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

// The upload in progress, if any: paused with abort(), resumed with start().
let uploading = null;

// Uploads with the tus protocol, so that a broken connection costs only what
// was in flight: tus-js-client retries on its own, and a file picked again
// after a reload resumes the upload its fingerprint names.
async function upload(file) {
  $("app-error").textContent = "";
  const metadata = { filename: file.name, filetype: file.type, ...submission() };
  $("upload").hidden = false;
  $("upload-name").textContent = file.name;
  $("upload-pause").hidden = false;
  $("upload-resume").hidden = true;
  const progress = (fraction) => {
    $("upload-bar").style.width = `${Math.round(fraction * 100)}%`;
    $("upload-percent").textContent = `${Math.round(fraction * 100)}%`;
  };
  progress(0);
  const done = () => {
    $("upload").hidden = true;
    uploading = null;
  };
  const upload = new tus.Upload(file, {
    endpoint: "/v1/uploads",
    metadata,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    removeFingerprintOnSuccess: true,
    // Each request carries the token of its moment, renewed when it runs out.
    async onBeforeRequest(request) {
      await (renewing ?? renewIfExpiring());
      request.setHeader("Authorization", `Bearer ${token}`);
    },
    // A refused token is renewed before the next try; other refusals but a
    // conflict are final, as tus-js-client's own rule has it.
    onShouldRetry(error) {
      const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
      if (status === 401) {
        renew();
        return true;
      }
      return status === 0 || status >= 500 || status === 409 || status === 423;
    },
    onProgress(sent, total) {
      progress(sent / total);
    },
    async onSuccess({ lastResponse }) {
      done();
      const id = lastResponse.getHeader("Mediajet-Job-Id");
      const response = id ? await api(`/v1/jobs/${id}`) : null;
      if (response && response.ok) update(await response.json());
      else loadJobs();
    },
    onError(error) {
      done();
      let body = null;
      try { body = JSON.parse(error.originalResponse.getBody()); } catch { body = null; }
      $("app-error").textContent = body?.error?.message || "The upload broke off; try again.";
    },
  });
  uploading = upload;
  const previous = await upload.findPreviousUploads();
  if (previous.length > 0) {
    upload.resumeFromPreviousUpload(previous[0]);
    $("upload-name").textContent = `${file.name} (resumed)`;
  }
  upload.start();
}

$("upload-pause").addEventListener("click", () => {
  if (!uploading) return;
  uploading.abort();
  $("upload-pause").hidden = true;
  $("upload-resume").hidden = false;
});
$("upload-resume").addEventListener("click", () => {
  if (!uploading) return;
  uploading.start();
  $("upload-pause").hidden = false;
  $("upload-resume").hidden = true;
});

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
    const more = job.outputs.length > 1 ? ` · ${job.outputs.length} outputs` : "";
    return `${job.output.filename} · ${kb} KiB · ${job.output.duration_seconds.toFixed(1)} s${more}`;
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
        <span class="downloads"></span>
        <button class="cancel secondary">Cancel</button>
        <button class="delete secondary">Delete</button>
      </div>`;
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
  const downloads = row.querySelector(".downloads");
  if (job.state === "completed" && downloads.childElementCount === 0) {
    job.outputs.forEach((output, n) => {
      if (!output.audio) return;
      const button = document.createElement("button");
      button.className = n === 0 ? "download" : "download-more secondary";
      button.textContent = n === 0 ? `Download ${output.format}` : output.format;
      button.addEventListener("click", () => download(output.audio.url, output.audio.filename));
      downloads.append(button);
      // A split output's zip, and each of its tracks on its own.
      for (const track of output.audio.tracks ?? []) {
        const link = document.createElement("button");
        link.className = "track secondary";
        link.textContent = track.title;
        link.title = track.filename;
        link.addEventListener("click", () => download(track.url, track.filename));
        downloads.append(link);
      }
    });
    showMedia(row, job);
  }
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

// A completed job's waveform picture, its loudness figures, and a player.
// The picture needs the Authorization header, so it is fetched and shown
// from a blob URL. The player streams the job's signed link, which needs no
// header: the browser fetches byte ranges of it as it plays and seeks.
async function showMedia(row, job) {
  const media = document.createElement("div");
  media.className = "job-media";
  const report = job.output.loudness;
  if (report) {
    const line = document.createElement("div");
    line.className = "loudness";
    const f = (x) => x.toFixed(1);
    line.textContent = `Loudness ${f(report.input.integrated)} → ${f(report.output.integrated)} LUFS` +
      ` (target ${f(report.target.integrated)}), true peak ${f(report.output.true_peak)} dBTP,` +
      ` ${report.normalization}`;
    media.append(line);
  }
  const listen = document.createElement("button");
  listen.className = "listen secondary";
  listen.textContent = "Listen";
  listen.addEventListener("click", () => {
    // A split output's link is its zip: its first track is played.
    const link = new URL(job.output.tracks?.[0]?.share_url ?? job.share_url);
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "metadata";
    // The page's own origin, whatever address the link was made for.
    audio.src = link.pathname + link.search;
    listen.replaceWith(audio);
    audio.play().catch(() => {});
  });
  media.append(listen);
  row.append(media);
  if (job.waveform) {
    const response = await api(job.waveform.picture);
    if (!response.ok) return;
    const picture = document.createElement("img");
    picture.className = "waveform";
    picture.alt = `Waveform of ${job.output.filename}`;
    picture.src = URL.createObjectURL(await response.blob());
    media.prepend(picture);
  }
}

async function download(path, filename) {
  const response = await api(path);
  if (!response.ok) {
    $("app-error").textContent = await errorText(response);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

setUpAccount();
show();
