// The dashboard page in Debian's Chromium, driven by playwright-core (the
// system browser; playwright never downloads its own). Run by
// host-test/tests/page.rs against a `serve --fake-twilio` it started,
// signed in with a token the operator minted for the tenant:
//   node page.mjs BASE_URL TENANT_TOKEN SCREENSHOT_DIR
// Each step asserts what a user would see; a screenshot of each state is
// written for review.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const [base, token, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const page_url = `${base}/tenants/acme`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const step = (name) => console.log(`step: ${name}`);
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // The page's backstop poll (every 15 s) is switched off, so whatever
  // changes on the page without a click came through its event stream.
  await context.addInitScript(() => {
    const every = window.setInterval;
    window.setInterval = (f, ms, ...rest) => (ms >= 15000 ? 0 : every(f, ms, ...rest));
  });
  const page = await context.newPage();
  // Script errors, console errors and API calls that failed (an error
  // status, or no answer) all fail the test, but for the refusals the
  // page is built to show until the first save: a tenant nobody saved
  // settings for has none (404), and the preview of a form that still has
  // problems is refused (422). Chromium's console line
  // for a refused request repeats the response, checked here instead. A
  // request cut off by a reload the test makes (net::ERR_ABORTED) is not
  // a failure.
  const errors = [];
  let phase = "new tenant";
  const expected = (method, path, status) =>
    phase === "new tenant" &&
    ((method === "GET" && status === 404 && /^\/v1\/tenants\/acme\/(settings|state|logs)$/.test(path)) ||
      (method === "POST" && status === 422 && path === "/v1/tenants/acme/preview"));
  page.on("pageerror", (e) => errors.push(`script: ${e}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(`console: ${m.text()}`);
  });
  page.on("response", (r) => {
    const path = new URL(r.url()).pathname;
    const method = r.request().method();
    if (path.startsWith("/v1/") && r.status() >= 400 && !expected(method, path, r.status()))
      errors.push(`API: ${method} ${path} answered ${r.status()} (${phase})`);
  });
  page.on("requestfailed", (r) => {
    const why = r.failure()?.errorText ?? "";
    if (!why.includes("ERR_ABORTED")) errors.push(`request: ${r.method()} ${r.url()} failed: ${why}`);
  });
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  step("without a token, the login form");
  await page.goto(page_url);
  await page.locator("#login").waitFor({ state: "visible" });
  assert.equal(await page.locator("#app").isVisible(), false);
  await shot("1-login");

  step("the token in the fragment signs in, and leaves the URL");
  await page.goto(`${page_url}#token=${encodeURIComponent(token)}`);
  await page.locator("#app").waitFor({ state: "visible" });
  assert.ok(!page.url().includes(token), "the token must not stay in the URL");

  step("the header names the component's contract version, as /healthz does");
  const health = await (await fetch(`${base}/healthz`)).json();
  assert.match(health.component, /^\d+\.\d+\.\d+$/);
  await page.locator("#contract", { hasText: health.component }).waitFor();

  step("every control has a label");
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("#app input, #app textarea, #app select")].filter((i) => i.labels.length === 0).map((i) => i.id));
  assert.deepEqual(unlabelled, []);

  step("an invalid account SID: the problem beside its field, Save refused");
  await page.fill("#f-twilioAccountSid", "AC123");
  await page.locator("#problem-f-twilioAccountSid", { hasText: "32 hexadecimal" }).waitFor();
  assert.equal(await page.locator("#save").isDisabled(), true);
  await shot("2-invalid");

  step("fixed: no problem left, saved");
  await page.fill("#f-twilioAccountSid", "AC0123456789abcdef0123456789abcdef");
  await page.fill("#f-twilioAuthToken", "page-test-auth-token");
  await page.fill("#f-fromMobileNo", "+15005550006");
  // Long enough that the countdown is seen through the page's 1 s refresh
  // on a loaded machine.
  await page.fill("#f-delaySeconds", "10");
  await page.fill("#f-cooldownMinutes", "0");
  await page.waitForFunction(() => !document.querySelector("#save").disabled);
  assert.equal(await page.locator("#problem-f-twilioAccountSid").textContent(), "");
  await page.click("#save");
  await page.locator("#save-status", { hasText: "Saved." }).waitFor();
  phase = "saved";

  step("reloaded: kept, the token shown as set, never its value");
  await page.reload();
  await page.locator("#app").waitFor({ state: "visible" });
  await page.waitForFunction(() => document.querySelector("#f-twilioAccountSid").value.startsWith("AC0123"));
  assert.equal(await page.inputValue("#f-twilioAuthToken"), "");
  await page.locator("#badge-f-twilioAuthToken", { hasText: "set" }).waitFor();
  assert.ok(!(await page.content()).includes("page-test-auth-token"), "the token must never reach the page");
  assert.equal(await page.inputValue("#f-delaySeconds"), "10");
  await shot("3-saved");

  step("CometChat: the webhook URL, a generated password shown once, the app saved");
  await page.waitForFunction(() => document.querySelector("#hook-url").value.endsWith("/cometchat/acme/webhook"));
  await page.fill("#hook-user", "acme-hook");
  await page.click("#hook-save");
  await page.locator("#hook-status", { hasText: "copy the password" }).waitFor();
  const password = await page.inputValue("#hook-password");
  assert.ok(password.length >= 32, `a generated password: ${password}`);
  await page.fill("#cc-app", "page-app");
  await page.selectOption("#cc-region", "eu");
  await page.fill("#cc-key", "page-test-rest-api-key");
  await page.click("#cc-save");
  await page.locator("#cc-status", { hasText: "Saved." }).waitFor();
  await page.locator("#cc-key-badge", { hasText: "set" }).waitFor();
  await shot("3b-cometchat");
  await page.reload();
  await page.locator("#app").waitFor({ state: "visible" });
  await page.waitForFunction(() => document.querySelector("#cc-app").value === "page-app");
  assert.equal(await page.inputValue("#hook-password"), "", "the password is shown once");
  assert.ok(!(await page.content()).includes(password), "never again");
  assert.ok(!(await page.content()).includes("page-test-rest-api-key"), "the REST API key never reaches the page");
  // Users are read from CometChat now; the rest of the story uses the
  // pushed users, as a tenant without a CometChat app does.
  const removed = await page.evaluate(async (tok) => (await fetch("/v1/tenants/acme/cometchat", { method: "DELETE", headers: { authorization: `Bearer ${tok}` } })).status, token);
  assert.equal(removed, 200);

  step("the preview: GSM-7, then UCS-2 with an emoji");
  await page.fill("#sample-text", "See you at 8");
  await page.locator("#preview-body", { hasText: "1 new message from Alice: See you at 8" }).waitFor();
  assert.match(await page.locator("#preview-meta").textContent(), /GSM-7 · 1 of 1 segment/);
  await page.fill("#sample-text", "See you at 8 🙂 " + "and then some more words ".repeat(3));
  await page.locator("#preview-meta", { hasText: "UCS-2" }).waitFor();
  const meta = await page.locator("#preview-meta").textContent();
  assert.match(meta, /1 of 1 segment/);
  assert.match(meta, /shortened to fit/);
  await shot("4-preview");

  step("try it: Alice writes, Bob is offline: the countdown");
  await page.click("#try-send");
  await page.locator("#try-status", { hasText: "scheduled" }).waitFor();
  await page.locator("#pending li", { hasText: "bob" }).waitFor();
  await page.locator("#pending .countdown", { hasText: "SMS in" }).waitFor();
  await shot("5-countdown");

  step("the event stream is open");
  await page.locator("#live", { hasText: "live" }).waitFor();

  step("the SMS in the phone panel, the activity line, the log: sent by the server as they happen");
  await page.locator("#phone .sms", { hasText: "Dinner at 8?" }).waitFor({ timeout: 30000 });
  await page.locator("#sends li", { hasText: "queued" }).waitFor();
  await page.locator("#log", { hasText: "sent SMS" }).waitFor();
  assert.ok(!(await page.locator("#log").textContent()).includes("4155552671"), "numbers masked in the log");
  await page.locator("#pending li", { hasText: "Nothing pending" }).waitFor();
  await page.locator("#unsent li", { hasText: "Every call sent what it should" }).waitFor();
  await shot("6-sms");

  step("a notification not sent, and why: listed apart from the log as it happens, and after a reload");
  const api = (method, path, body) =>
    page.evaluate(async ([tok, method, path, body]) => {
      const r = await fetch(path, { method, headers: { authorization: `Bearer ${tok}`, "content-type": "application/json" }, body: body && JSON.stringify(body) });
      return r.status;
    }, [token, method, path, body]);
  assert.equal(await api("PUT", "/v1/tenants/acme/users/carol", { name: "Carol", presence: "offline" }), 200);
  assert.equal(await api("POST", "/v1/tenants/acme/messages", { id: "to-carol", conversation: "alice_carol", sender: "alice", receiver: "carol", text: "Are you coming?" }), 200);
  await page.locator("#unsent li", { hasText: "skipped: no-contact-number" }).waitFor({ timeout: 30000 });
  assert.match(await page.locator("#unsent li").first().textContent(), /on-timer · deliver\/alice_carol\/carol/);
  await shot("6b-unsent");
  await page.reload();
  await page.locator("#app").waitFor({ state: "visible" });
  await page.locator("#unsent li", { hasText: "skipped: no-contact-number" }).waitFor();

  step("keyboard: Tab reaches the settings form's first control");
  await page.focus("body");
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement && document.activeElement.id === "f-twilioAccountSid")) break;
  }
  assert.equal(await page.evaluate(() => document.activeElement.id), "f-twilioAccountSid");

  step("readable at 360 px: nothing wider than the screen");
  await page.setViewportSize({ width: 360, height: 800 });
  const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
  assert.ok(width <= 361, `the page is ${width} px wide at 360`);
  await shot("7-narrow");

  assert.deepEqual(errors, [], "no script or console error, no failed API call");
  console.log("page: every step passed");
} finally {
  await browser.close();
}
