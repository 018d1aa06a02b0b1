// Imports a video from its address on the web page, in headless Chromium:
// the address typed into the import form with Opus chosen above it, the job
// followed live until it completes. A refused address shows the service's
// message.
//
// Environment: BASE_URL, EMAIL, PASSWORD, SOURCE_URL. Prints a JSON
// summary; exits non-zero on any failure.
import { env, launch } from "./browser.mjs";

const base = env("BASE_URL");
const summary = { page_errors: [] };
const browser = await launch();
try {
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (error) => summary.page_errors.push(error.message));
  await page.goto(base);
  await page.fill("#email", env("EMAIL"));
  await page.fill("#password", env("PASSWORD"));
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#drop-zone", { state: "visible" });

  // A refused address: the message under the form says why.
  await page.fill("#source-url", "ftp://example.com/talk.mp4");
  await page.click("#import-form button[type=submit]");
  await page.waitForSelector("#app-error:not(:empty)");
  summary.refusal = await page.textContent("#app-error");

  await page.selectOption("#format", "opus");
  await page.fill("#source-url", env("SOURCE_URL"));
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/v1/jobs") && r.request().method() === "POST"),
    page.click("#import-form button[type=submit]"),
  ]);
  summary.status = answer.status();
  summary.job = (await answer.json()).id;
  const row = page.locator(`li[data-job-id="${summary.job}"]`);
  await row.locator(".state", { hasText: "completed" }).waitFor({ timeout: 60000 });
  summary.row = await row.locator(".name").textContent();
  summary.field_cleared = (await page.inputValue("#source-url")) === "";
  summary.error_cleared = (await page.textContent("#app-error")) === "";
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
