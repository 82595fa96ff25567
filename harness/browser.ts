// Debian's Chromium driven by playwright-core (no browser download), and a page model of the
// dashboard that works on both the real client and the fixture's page: user-facing locators only
// (roles and names a person reads), so one test drives both trees.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { repoRoot } from "../scripts/lib/paths.ts";

export const CHROMIUM = process.env.AGENT_MONITOR_CHROMIUM || "/usr/bin/chromium";
/** Screenshots and other output a person looks at after a run (git-ignored). */
export const testOutputDir = path.join(repoRoot, "test-output");

/** Why the browser cannot run here, or null when it can. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set AGENT_MONITOR_CHROMIUM)`;
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** console.error messages and uncaught page errors, in order. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * A headless Chromium with a fresh profile. The background-networking flags keep it from
 * phoning home (on a closed network those connections are refused and slow everything down).
 */
export async function openBrowser(viewport = { width: 1440, height: 900 }): Promise<Browser> {
  const profile = mkdtempSync(path.join(os.tmpdir(), "am-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console.error: ${msg.text()} (${msg.location().url})`);
  });
  page.on("pageerror", (err) => errors.push(`page error: ${err.message}`));
  return {
    context,
    page,
    errors,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Save a full-page screenshot under test-output/<name>.png and return its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(testOutputDir, `${name}.png`);
  mkdirSync(path.dirname(file), { recursive: true });
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Upstream's first-run screens, once per tab: what to monitor (Claude Code), then, if its hooks are missing, the hook gate. */
export async function completeFirstRun(page: Page): Promise<void> {
  const picker = page.getByRole("radiogroup", { name: "What would you like to monitor?" });
  await picker.getByRole("radio", { name: /^Claude Code/ }).click();
  await page.getByRole("button", { name: "Continue to dashboard" }).click();
  // The real client checks the hooks first and skips the gate when they are installed
  // (the server installs them into its home at start); the fixture page always asks.
  const gate = page.getByRole("dialog", { name: "Set up live monitoring" });
  const alreadyInstalled = gate.getByRole("button", { name: "I have already installed hooks" });
  await Promise.race([
    alreadyInstalled.waitFor({ timeout: 15_000 }).then(() => alreadyInstalled.click()),
    picker.waitFor({ state: "detached", timeout: 15_000 }),
  ]);
  await picker.waitFor({ state: "detached", timeout: 15_000 });
}

/** Open the Sessions page from the navigation, as a person would. */
export async function openSessions(page: Page): Promise<void> {
  await page.getByRole("link", { name: /^Sessions/ }).first().click();
  await page.getByRole("heading", { name: "Sessions", level: 1 }).waitFor();
}

/** A uuid's first 12 characters, which both pages print under each session's name (in innerText, on a line of its own). */
const ID_PREFIX = /\b[0-9a-f]{8}-[0-9a-f]{3}\b/;
/** The same for locator filters, which match textContent (no separators between elements). */
const HAS_ID_PREFIX = /[0-9a-f]{8}-[0-9a-f]{3}/;

export interface ListedSession {
  idPrefix: string;
  text: string;
  page: number;
}

/** The body rows of the sessions table on the current page, once loaded. */
function sessionRows(page: Page) {
  return page.getByRole("row").filter({ hasText: HAS_ID_PREFIX });
}

/** Every session the Sessions page lists, going through its pages with Next (10 a page). */
export async function listAllSessions(page: Page, expectedTotal: number): Promise<ListedSession[]> {
  const out: ListedSession[] = [];
  const pages = Math.max(1, Math.ceil(expectedTotal / 10));
  let previous = new Set<string>();
  for (let p = 0; p < pages; p++) {
    if (pages > 1) {
      const from = p * 10 + 1;
      const to = Math.min((p + 1) * 10, expectedTotal);
      await page.getByText(`Showing ${from}-${to} of ${expectedTotal}`).waitFor();
    }
    // The real page updates "Showing …" at once and the rows when its fetch returns: wait for rows
    // none of which were on the page before.
    const rows = sessionRows(page);
    let current: ListedSession[] = [];
    const deadline = Date.now() + 15_000;
    for (;;) {
      current = [];
      for (const text of await rows.allInnerTexts()) {
        const m = ID_PREFIX.exec(text);
        if (m) current.push({ idPrefix: m[0], text, page: p });
      }
      if (current.length > 0 && current.every((c) => !previous.has(c.idPrefix))) break;
      if (Date.now() > deadline) throw new Error(`page ${p + 1} of the Sessions list did not load new rows`);
      await page.waitForTimeout(100);
    }
    out.push(...current);
    previous = new Set(current.map((c) => c.idPrefix));
    if (p < pages - 1) await page.getByRole("button", { name: "Next" }).click();
  }
  return out;
}

/** Click a listed session's row on the current page and read the total of "Timeline (shown/total)". */
export async function eventTotalShown(page: Page, idPrefix: string): Promise<number> {
  await sessionRows(page).filter({ hasText: idPrefix }).first().click();
  const tab = page.getByRole(/* both pages: a button or a tab */ "button", { name: /^Timeline \(\d+\/\d+\)$/ }).or(page.getByRole("tab", { name: /^Timeline \(\d+\/\d+\)$/ }));
  await tab.first().waitFor();
  // The count can arrive after the button: wait until it names a total.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = /Timeline \((\d+)\/(\d+)\)/.exec(await tab.first().innerText());
    if (m && Number(m[2]) > 0) return Number(m[2]);
    if (Date.now() > deadline) throw new Error(`the Timeline tab shows no events for ${idPrefix}`);
    await page.waitForTimeout(200);
  }
}

/** True once a row for the session is on the current page (no reload: the page updates itself). */
export function waitForSessionRow(page: Page, idPrefix: string, timeoutMs: number): Promise<void> {
  return sessionRows(page).filter({ hasText: idPrefix }).first().waitFor({ timeout: timeoutMs });
}
