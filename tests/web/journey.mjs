// Drives the web page in headless Chromium (Debian's package, through
// playwright-core): log in, drop a video, watch the job complete live,
// download the audio, cancel a second job, take a screenshot, renew an
// access token that stopped working, and log out.
//
// Environment: BASE_URL, EMAIL, PASSWORD, VIDEO (short), LONG_VIDEO (for the
// cancel), OUT_DIR, and optionally CHROMIUM (default /usr/bin/chromium).
// Prints a JSON summary; exits non-zero on any failure.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { env, launch } from "./browser.mjs";

const base = env("BASE_URL");
const outDir = env("OUT_DIR");

const browser = await launch();
const summary = { external_requests: [], page_errors: [], failed_requests: [] };
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  page.on("request", (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith("blob:")) {
      summary.external_requests.push(request.url());
    }
  });
  // The byte ranges the player asks of a signed link, and the answers.
  const playerRanges = [];
  page.on("response", async (response) => {
    if (!response.url().startsWith(`${base}/d/`)) return;
    const range = await response.request().headerValue("range");
    playerRanges.push(`${response.status()} ${range}`);
  });
  // Everything the page says goes to stderr too, for a failing run.
  page.on("response", (response) => {
    const line = `${response.status()} ${response.request().method()} ${response.url().slice(base.length)}`;
    console.error(`page request: ${line}`);
    if (response.status() >= 400) summary.failed_requests.push(line);
  });
  page.on("pageerror", (error) => {
    console.error(`page error: ${error.message}`);
    summary.page_errors.push(error.message);
  });
  page.on("console", (message) => {
    console.error(`page console ${message.type()}: ${message.text()}`);
  });

  await page.goto(base);

  // A wrong password is shown as an error; the right one opens the app.
  await page.fill("#email", env("EMAIL"));
  await page.fill("#password", "not the password");
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#login-error:not(:empty)");
  summary.login_error = await page.textContent("#login-error");
  await page.fill("#password", env("PASSWORD"));
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#drop-zone", { state: "visible" });

  // Every state and detail line the job list shows, as it changes.
  await page.evaluate(() => {
    window.seen = [];
    new MutationObserver(() => {
      for (const row of document.querySelectorAll("#jobs li")) {
        const line = `${row.querySelector(".state").textContent} | ${row.querySelector(".job-detail").textContent}`;
        if (window.seen.at(-1) !== line) window.seen.push(line);
      }
    }).observe(document.getElementById("jobs"), { subtree: true, childList: true, characterData: true, attributes: true });
  });

  // Drop the video onto the drop zone, as MP3 normalized for podcasts,
  // titled, with a FLAC too: the options panel.
  await page.selectOption("#format", "mp3");
  await page.click("#more-options summary");
  await page.selectOption("#loudness", "podcast");
  await page.fill("#title", "Holiday, day 1");
  await page.check('#also input[value="flac"]');
  const bytes = (await readFile(env("VIDEO"))).toString("base64");
  const dataTransfer = await page.evaluateHandle(({ bytes, name }) => {
    const raw = Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([raw], name, { type: "video/mp4" }));
    return transfer;
  }, { bytes, name: path.basename(env("VIDEO")) });
  await page.dispatchEvent("#drop-zone", "drop", { dataTransfer });

  const first = page.locator("#jobs li").first();
  await first.locator(".state", { hasText: "completed" }).waitFor({ timeout: 60000 });
  summary.seen = await page.evaluate(() => window.seen);
  summary.first_job = await first.getAttribute("data-job-id");

  // Its waveform, loudness figures, a download button per output, and a
  // player that plays the audio.
  const waveform = first.locator("img.waveform");
  await waveform.waitFor({ timeout: 10000 });
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await waveform.elementHandle());
  summary.waveform_width = await waveform.evaluate((img) => img.naturalWidth);
  summary.loudness = await first.locator(".loudness").textContent();
  summary.download_buttons = await first.locator(".downloads button").allTextContents();
  await first.locator("button.listen").click();
  const audio = first.locator("audio");
  await audio.waitFor({ timeout: 10000 });
  await page.waitForFunction((a) => a.readyState >= 1 && a.duration > 0, await audio.elementHandle());
  summary.player_seconds = await audio.evaluate((a) => a.duration);
  // It plays the signed link, which needs no token: seeking past what it
  // has fetched makes it ask for a byte range.
  summary.player_source = await audio.evaluate((a) => new URL(a.src).pathname);
  await audio.evaluate((a) => new Promise((resolve) => {
    a.addEventListener("seeked", resolve, { once: true });
    a.currentTime = a.duration * 0.75;
  }));
  summary.player_ranges = playerRanges;

  // Download it through the page.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    first.locator("button.download").click(),
  ]);
  summary.downloaded = path.join(outDir, download.suggestedFilename());
  await download.saveAs(summary.downloaded);

  // A second job, picked with the file chooser, canceled while it runs.
  await page.selectOption("#format", "opus");
  await page.selectOption("#loudness", "");
  await page.uncheck('#also input[value="flac"]');
  await page.setInputFiles("#file-input", env("LONG_VIDEO"));
  const second = page.locator("#jobs li").first();
  await second.locator(".state", { hasText: "running" }).waitFor({ timeout: 30000 });
  await second.locator(".job-detail", { hasText: "real time" }).waitFor({ timeout: 30000 });
  summary.running_detail = await second.locator(".job-detail").textContent();
  await second.locator("button.cancel").click();
  await second.locator(".state", { hasText: "canceled" }).waitFor({ timeout: 10000 });
  summary.second_job = await second.getAttribute("data-job-id");

  summary.screenshot = path.join(outDir, "finished-page.png");
  await page.screenshot({ path: summary.screenshot, fullPage: true });

  // An access token the server refuses (as an expired one) is renewed with
  // the refresh token, and the page carries on.
  const before = await page.evaluate(() => sessionStorage.getItem("mediajet.token"));
  await page.evaluate(() => {
    token = "refused.by.server";
  });
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/v1/tokens/refresh")),
    page.evaluate(() => loadJobs()),
  ]);
  await page.waitForFunction((old) => {
    const now = sessionStorage.getItem("mediajet.token");
    return now && now !== old;
  }, before);
  summary.still_logged_in = await page.isVisible("#app");

  // Logging out ends the session on the server: its token stops working.
  const renewed = await page.evaluate(() => sessionStorage.getItem("mediajet.token"));
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/v1/logout")),
    page.click("#logout"),
  ]);
  summary.after_logout = await page.evaluate(async (bearer) => {
    const response = await fetch("/v1/jobs", { headers: { Authorization: `Bearer ${bearer}` } });
    return response.status;
  }, renewed);
  console.log(JSON.stringify(summary));
} finally {
  await browser.close();
}
