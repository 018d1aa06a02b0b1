// A web app on another origin uploads to mediajet with tus-js-client in
// headless Chromium: the app's page (served at ALLOWED_ORIGIN) loads the
// client from mediajet and uploads VIDEO across origins, reading the job
// from the answer's headers; the same page at OTHER_ORIGIN is refused by
// the browser.
//
// Environment: BASE_URL, TOKEN, VIDEO, ALLOWED_ORIGIN, OTHER_ORIGIN, and
// optionally CHROMIUM. Prints a JSON summary; exits non-zero on failure.
import { readFile } from "node:fs/promises";
import { env, launch } from "./browser.mjs";

const base = env("BASE_URL");
const bytes = (await readFile(env("VIDEO"))).toString("base64");

const browser = await launch();

async function uploadFrom(origin) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (message) => console.error(`page console ${message.type()}: ${message.text()}`));
  page.on("requestfailed", (request) => console.error(`failed: ${request.url()} ${request.failure()?.errorText}`));
  page.on("response", (response) => console.error(`${response.status()} ${response.request().method()} ${response.url()}`));
  await page.goto(`${origin}/index.html`);
  await page.waitForFunction(() => typeof tus !== "undefined");
  const outcome = await page.evaluate(({ base, token, bytes }) => new Promise((resolve) => {
    const raw = Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0));
    const file = new File([raw], "clip.mp4", { type: "video/mp4" });
    const upload = new tus.Upload(file, {
      endpoint: `${base}/v1/uploads`,
      headers: { Authorization: `Bearer ${token}` },
      metadata: { filename: "clip.mp4", format: "mp3" },
      retryDelays: [],
      onError: (error) => resolve({ error: String(error) }),
      onSuccess: ({ lastResponse }) => resolve({
        url: upload.url,
        job: lastResponse.getHeader("Mediajet-Job-Id"),
      }),
    });
    upload.start();
  }), { base, token: env("TOKEN"), bytes });
  await context.close();
  return outcome;
}

try {
  const summary = {
    allowed: await uploadFrom(env("ALLOWED_ORIGIN")),
    other: await uploadFrom(env("OTHER_ORIGIN")),
  };
  console.log(JSON.stringify(summary));
} finally {
  await browser.close();
}
