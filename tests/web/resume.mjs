// Drives the web page's resumable upload in headless Chromium: a video is
// picked, its upload (slowed down to a slow uplink) is paused and resumed,
// then cut off by a reload of the page; picking the same file again resumes
// it from where it stopped, and the job completes.
//
// Environment: BASE_URL, EMAIL, PASSWORD, VIDEO (a few MB), and optionally
// CHROMIUM. Prints a JSON summary; exits non-zero on any failure.
import { env, launch } from "./browser.mjs";

const base = env("BASE_URL");

const browser = await launch();
const summary = { creations: 0, page_errors: [], parts: [] };
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("request", (request) => {
    const path = request.url().slice(base.length);
    if (request.method() === "POST" && path === "/v1/uploads") summary.creations += 1;
    if (request.method() === "PATCH") summary.parts.push(request.headers()["upload-offset"]);
  });
  page.on("pageerror", (error) => summary.page_errors.push(error.message));
  page.on("console", (message) => console.error(`page console ${message.type()}: ${message.text()}`));

  // A slow uplink, so that the upload is still going when the test acts.
  const devtools = await context.newCDPSession(page);
  const uplink = async (bytesPerSecond) => {
    await devtools.send("Network.enable");
    await devtools.send("Network.emulateNetworkConditions", {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
    });
  };
  await uplink(1_000_000);

  await page.goto(base);
  await page.fill("#email", env("EMAIL"));
  await page.fill("#password", env("PASSWORD"));
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#drop-zone", { state: "visible" });

  const percent = async () => Number((await page.textContent("#upload-percent")).replace("%", ""));
  const atLeast = (value) =>
    page.waitForFunction(
      (value) => Number(document.getElementById("upload-percent").textContent.replace("%", "")) >= value,
      value,
      { timeout: 60000 },
    );

  await page.setInputFiles("#file-input", env("VIDEO"));
  await atLeast(10);
  await page.click("#upload-pause");
  summary.paused_at = await percent();
  await page.waitForSelector("#upload-resume", { state: "visible" });
  await page.click("#upload-resume");
  await atLeast(summary.paused_at + 10);

  // A reload cuts the upload off; the same file picked again resumes it.
  summary.reloaded_at = await percent();
  await page.reload();
  await page.waitForSelector("#drop-zone", { state: "visible" });
  await uplink(8_000_000);
  await page.setInputFiles("#file-input", env("VIDEO"));
  await page.waitForSelector("#upload-name:text('(resumed)')");
  const job = page.locator("#jobs li").first();
  await job.locator(".state", { hasText: "completed" }).waitFor({ timeout: 120000 });
  summary.job = await job.getAttribute("data-job-id");
  summary.resumed_parts = summary.parts.slice(-1);
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
