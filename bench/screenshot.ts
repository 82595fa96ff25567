// The bench's "what a person saw": after the fire-and-forget phase at the largest N, the Sessions
// page of each tree in headless Chromium (the browser test's page model), saved next to the report
// and shown side by side in it.
import path from "node:path";
import { chromiumMissing, completeFirstRun, openBrowser, openSessions } from "../harness/browser.ts";
import type { TreeKind } from "./trees.ts";

export interface Screenshot {
  tree: TreeKind;
  agents: number;
  /** File name, beside the report. */
  file: string | null;
  /** Why there is no screenshot, or what the page logged as errors. */
  note: string | null;
}

/** Open the dashboard at url as a first-time visitor, go to Sessions and save the page to file. */
export async function screenshotSessions(url: string, file: string, tree: TreeKind, agents: number): Promise<Screenshot> {
  const missing = chromiumMissing();
  if (missing) return { tree, agents, file: null, note: missing };
  const browser = await openBrowser();
  try {
    const { page } = browser;
    page.setDefaultTimeout(15_000);
    await page.goto(url);
    await completeFirstRun(page);
    await openSessions(page);
    // Rows (or the empty state) are in once the count line names a number.
    await page.getByText(/\d+ sessions? recorded/).waitFor({ timeout: 15_000 });
    await page.waitForTimeout(500);
    await page.screenshot({ path: file, fullPage: true });
    return { tree, agents, file: path.basename(file), note: browser.errors.length ? `page errors: ${browser.errors.join("; ")}` : null };
  } catch (err) {
    return { tree, agents, file: null, note: `screenshot failed: ${(err as Error).message.split("\n")[0]}` };
  } finally {
    await browser.close();
  }
}

/** The report's section: one row, one image per tree (unpatched first). */
export function screenshotsMarkdown(shots: readonly Screenshot[]): string[] {
  if (shots.length === 0) return [];
  const ordered = [...shots].sort((a, b) => (a.tree === b.tree ? 0 : a.tree === "unpatched" ? -1 : 1));
  const lines = [
    `## What a person saw: the Sessions page after the fire-and-forget phase (N=${ordered[0]!.agents})`,
    "",
    `| ${ordered.map((s) => s.tree).join(" | ")} |`,
    `| ${ordered.map(() => "---").join(" | ")} |`,
    `| ${ordered.map((s) => (s.file ? `![${s.tree}](${s.file})` : `no screenshot: ${s.note}`)).join(" | ")} |`,
  ];
  const notes = ordered.filter((s) => s.file && s.note);
  for (const s of notes) lines.push("", `- ${s.tree}: ${s.note}`);
  lines.push("");
  return lines;
}
