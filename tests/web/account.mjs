// Drives the account panel and the users page in headless Chromium: a
// user makes an API key (shown once), which Node then uses, revokes it,
// and changes their password; an admin disables, enables and removes that
// user. Screenshots of both pages are kept.
//
// Environment: BASE_URL, EMAIL, PASSWORD, NEW_PASSWORD, ADMIN_EMAIL,
// ADMIN_PASSWORD, OUT_DIR. Prints a JSON summary; exits non-zero on any
// failure.
import path from "node:path";
import { env, launch } from "./browser.mjs";

const base = env("BASE_URL");
const outDir = env("OUT_DIR");
const summary = { page_errors: [] };

// Logs in on a fresh page of its own.
async function logIn(browser, email, password) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => summary.page_errors.push(error.message));
  await page.goto(base);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#drop-zone", { state: "visible" });
  return page;
}

// The answer's status to `GET path` with `authorization`, from Node.
async function statusWith(path, authorization) {
  const response = await fetch(`${base}${path}`, { headers: { Authorization: authorization } });
  return response.status;
}

const browser = await launch();
try {
  const user = await logIn(browser, env("EMAIL"), env("PASSWORD"));
  summary.users_button_for_user = await user.isVisible("#users-open");
  await user.click("#account-open");
  await user.waitForSelector("#account", { state: "visible" });
  summary.who = await user.textContent("#account-who");
  summary.notify_shown = await user.inputValue("#notify");
  await Promise.all([
    user.waitForResponse((r) => r.url().endsWith("/v1/me/notifications") && r.ok()),
    user.selectOption("#notify", "failures"),
  ]);
  const pageToken = await user.evaluate(() => sessionStorage.getItem("mediajet.token"));
  const me = await fetch(`${base}/v1/me`, { headers: { Authorization: `Bearer ${pageToken}` } });
  summary.notify_saved = (await me.json()).notify;

  // A key, shown once, that works from elsewhere until it is revoked.
  await user.fill("#key-name", "nightly");
  await user.uncheck('#key-form input[value="jobs:write"]');
  await user.click("#key-form button[type=submit]");
  await user.waitForSelector("#key-made", { state: "visible" });
  const key = await user.textContent("#key-secret");
  summary.key_prefix = key.slice(0, 4);
  await user.waitForSelector("#keys li");
  summary.listed_keys = await user.locator("#keys li .what").allTextContents();
  summary.key_status_before = await statusWith("/v1/jobs", `Bearer ${key}`);
  summary.account_screenshot = path.join(outDir, "account-page.png");
  await user.screenshot({ path: summary.account_screenshot, fullPage: true });
  await user.locator("#keys li button", { hasText: "Revoke" }).click();
  await user.waitForFunction(() => document.querySelectorAll("#keys li").length === 0);
  summary.key_status_after = await statusWith("/v1/jobs", `Bearer ${key}`);

  // A webhook: a private address is refused with the reason; a public one
  // is added, its secret shown once, then deleted.
  await user.fill("#hook-url", "http://127.0.0.1:9/hook");
  await user.click("#hook-form button[type=submit]");
  await user.waitForSelector("#hook-error:not(:empty)");
  summary.hook_refused = await user.textContent("#hook-error");
  await user.fill("#hook-url", "https://example.com/hooks/mediajet");
  await user.click("#hook-form button[type=submit]");
  await user.waitForSelector("#hook-made", { state: "visible" });
  summary.hook_secret_prefix = (await user.textContent("#hook-secret")).slice(0, 6);
  await user.waitForSelector("#hooks li");
  summary.listed_hooks = await user.locator("#hooks li .what").allTextContents();
  await user.locator("#hooks li button", { hasText: "Delete" }).click();
  await user.waitForFunction(() => document.querySelectorAll("#hooks li").length === 0);

  // A podcast feed: its address shown once, which opens without a token,
  // until the feed is turned off.
  await user.click("#feed-form button[type=submit]");
  await user.waitForSelector("#feed-made", { state: "visible" });
  const feed = await user.textContent("#feed-url");
  summary.feed_status = (await fetch(feed)).status;
  summary.feed_state = await user.textContent("#feed-state");
  await user.click("#feed-off");
  await user.waitForFunction(() => document.getElementById("feed-state").textContent === "Off.");
  summary.feed_status_off = (await fetch(feed)).status;

  // A wrong current password is said; the right one changes it.
  await user.fill("#current-password", "not the password");
  await user.fill("#new-password", env("NEW_PASSWORD"));
  await user.click("#password-form button[type=submit]");
  await user.waitForSelector("#password-result.error:not(:empty)");
  summary.wrong_password = await user.textContent("#password-result");
  await user.fill("#current-password", env("PASSWORD"));
  await user.fill("#new-password", env("NEW_PASSWORD"));
  await user.click("#password-form button[type=submit]");
  await user.waitForFunction(() => {
    const result = document.getElementById("password-result");
    return result.textContent.startsWith("Changed");
  });
  summary.password_changed = await user.textContent("#password-result");
  const userToken = await user.evaluate(() => sessionStorage.getItem("mediajet.token"));

  // The admin's users page: disable, enable, remove.
  const admin = await logIn(browser, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  await admin.click("#users-open");
  const userRow = admin.locator(`#user-list li[data-email="${env("EMAIL")}"]`);
  await userRow.waitFor();
  summary.listed_users = await admin.locator("#user-list li .what").allTextContents();
  await userRow.locator("button", { hasText: "Disable" }).click();
  await admin.locator(`#user-list li[data-email="${env("EMAIL")}"] .what`, { hasText: "disabled" }).waitFor();
  summary.user_token_when_disabled = await statusWith("/v1/me", `Bearer ${userToken}`);
  summary.users_screenshot = path.join(outDir, "users-page.png");
  await admin.screenshot({ path: summary.users_screenshot, fullPage: true });
  await admin.locator(`#user-list li[data-email="${env("EMAIL")}"] button`, { hasText: "Enable" }).click();
  await admin.locator(`#user-list li[data-email="${env("EMAIL")}"] button`, { hasText: "Disable" }).waitFor();
  // Disabling ended the user's sessions; enabled again, they log in.
  summary.user_token_when_enabled = await statusWith("/v1/me", `Bearer ${userToken}`);
  const login = await fetch(`${base}/v1/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: env("EMAIL"), password: env("NEW_PASSWORD") }),
  });
  summary.login_when_enabled = login.status;
  admin.on("dialog", (dialog) => dialog.accept());
  await admin.locator(`#user-list li[data-email="${env("EMAIL")}"] button`, { hasText: "Remove" }).click();
  await admin.locator(`#user-list li[data-email="${env("EMAIL")}"]`).waitFor({ state: "detached" });
  summary.listed_after_removal = await admin.locator("#user-list li .what").allTextContents();
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
