// Semantic drift: the stamp fingerprints the upstream function around each patch anchor; a later
// build whose anchored upstream code changed says "applies — re-review" (a failure with --strict).
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { fixtureUpstreamDir, repoRoot } from "../../scripts/lib/paths.ts";
import { build, BuildError } from "../../scripts/pipeline/build.ts";
import { summarizeChange } from "../../scripts/pipeline/fingerprint.ts";
import { realUpstream, SKIP_REAL } from "../support/build-once.ts";

const tmpOut = (name: string) => path.join(mkdtempSync(path.join(os.tmpdir(), `am-review-${name}-`)), "agent-monitor");
const HOOKS = "server/routes/hooks.js";

/** A copy of the fixture with `edit` applied to one file. */
function fixtureCopy(file: string, edit: (text: string) => string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "am-review-upstream-"));
  cpSync(fixtureUpstreamDir, dir, { recursive: true });
  const abs = path.join(dir, file);
  const before = readFileSync(abs, "utf8");
  const after = edit(before);
  expect(after).not.toBe(before);
  writeFileSync(abs, after);
  return dir;
}

describe("applies — re-review", () => {
  it("the stamp fingerprints upstream's functions around the anchors, per patch", async () => {
    const out = tmpOut("fp");
    const built = await build({ upstream: fixtureUpstreamDir, out, patches, force: true });
    const fps = built.stamp.fingerprints!;
    expect(Object.keys(fps)).toEqual(expect.arrayContaining(["atomic-watchdog", "write-queue", "transcript-outside-lock"]));
    expect(fps["atomic-watchdog"].map((u) => `${u.file} ${u.function}`)).toEqual([`${HOOKS} watchdogCheck`]);
    // processEventCore is ours; the fingerprint is of upstream's processEvent it was cut from.
    expect(fps["transcript-outside-lock"].map((u) => u.function)).toEqual(["processEvent"]);
    expect(JSON.stringify(fps)).not.toContain("processEventCore");
    expect(built.reviews).toEqual([]);
  });

  it("a rebuild of the same upstream reports none; reformatting and comments do not count", async () => {
    const reviewedOut = tmpOut("base");
    await build({ upstream: fixtureUpstreamDir, out: reviewedOut, patches, force: true });
    const reviewed = `${reviewedOut}.stamp.json`;
    const again = await build({ upstream: fixtureUpstreamDir, out: tmpOut("again"), patches, force: true, reviewed });
    expect(again.reviews).toEqual([]);
    const reformatted = fixtureCopy(HOOKS, (t) =>
      t.replace("function watchdogCheck() {\n  try {\n", "function watchdogCheck() {\n  // a new comment\n  try {\n\n").replace('const fs = require("fs");', "const fs = require('fs') ;"),
    );
    const re = await build({ upstream: reformatted, out: tmpOut("fmt"), patches, force: true, reviewed });
    expect(re.reviews).toEqual([]);
  });

  it("a statement added to a function around an anchor names exactly that patch and function; --strict fails", async () => {
    const reviewedOut = tmpOut("base2");
    await build({ upstream: fixtureUpstreamDir, out: reviewedOut, patches, force: true });
    const reviewed = `${reviewedOut}.stamp.json`;
    const drifted = fixtureCopy(HOOKS, (t) => t.replace("function watchdogCheck() {\n  try {\n", "function watchdogCheck() {\n  try {\n    const startedAt = Date.now();\n"));
    const lines: string[] = [];
    const res = await build({ upstream: drifted, out: tmpOut("drifted"), patches, force: true, reviewed, log: (l) => lines.push(l) });
    expect(res.status).toBe("built");
    expect(res.reviews.map((r) => r.line)).toEqual([
      `applies — re-review: atomic-watchdog ${HOOKS} watchdogCheck changed upstream since directory:test/fixtures/upstream: 1 statement added`,
    ]);
    expect(lines.some((l) => l.includes("applies — re-review: atomic-watchdog"))).toBe(true);

    const strictOut = tmpOut("strict");
    const err = await build({ upstream: drifted, out: strictOut, patches, force: true, reviewed, strict: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).lines).toEqual(res.reviews.map((r) => r.line));
  });

  it("summarizes added, removed and changed statements", () => {
    expect(summarizeChange(["a", "b", "c"], ["a", "x", "c", "d"])).toBe("1 statement added, 1 changed");
    expect(summarizeChange(["a", "b", "c"], ["a"])).toBe("2 removed");
    expect(summarizeChange(["a"], ["a"])).toBe("signature or parameters changed");
  });

  it.skipIf(!realUpstream)("the pinned release rebuilt against the committed build-stamp.json reports no re-review", async () => {
    const res = await build({ upstream: realUpstream!, out: tmpOut("real"), patches, force: true, reviewed: path.join(repoRoot, "build-stamp.json") });
    expect(res.stamp.upstream.commit).toBe(JSON.parse(readFileSync(path.join(repoRoot, "build-stamp.json"), "utf8")).upstream.commit);
    expect(Object.keys(res.stamp.fingerprints ?? {}).length).toBeGreaterThan(5);
    expect(res.reviews).toEqual([]);
  });
  if (!realUpstream) it.skip(`real upstream: ${SKIP_REAL}`, () => {});
});
