// Mutation tests: a copy of the fixture monitor with ONE plausible upstream change, built with the
// real patches into a temp dir. Either the build fails (a gate names the patch) or it succeeds and
// the test shows the property still holds.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect } from "vitest";
import { patches as allPatches } from "../../patches/index.ts";
import type { Patch } from "../../patches/define-patch.ts";
import { fixtureUpstreamDir } from "../../scripts/lib/paths.ts";
import { build, BuildError, type BuildOutcome } from "../../scripts/pipeline/build.ts";

// Every mutant and build folder of the test file, removed after its tests (registered at import).
const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});
function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** New file text, or an edit of the fixture's text (which must change it). */
export type Mutation = Record<string, string | ((text: string) => string)>;

/** A temp copy of the fixture monitor with `mutation` applied; returns its path. */
export function mutateFixture(name: string, mutation: Mutation): string {
  const dir = path.join(tempDir(`am-mutant-${name}-`), "upstream");
  cpSync(fixtureUpstreamDir, dir, { recursive: true });
  for (const [rel, change] of Object.entries(mutation)) {
    const abs = path.join(dir, rel);
    if (typeof change === "string") {
      mkdirSync(path.dirname(abs), { recursive: true });
      writeFileSync(abs, change);
      continue;
    }
    const before = existsSync(abs) ? readFileSync(abs, "utf8") : "";
    const after = change(before);
    expect(after, `mutation of ${rel} changed nothing`).not.toBe(before);
    writeFileSync(abs, after);
  }
  return dir;
}

/** Insert `text` before the first occurrence of `anchor` (which must exist). */
export function before(anchor: string, text: string): (s: string) => string {
  return (s) => {
    expect(s, `anchor ${JSON.stringify(anchor)}`).toContain(anchor);
    return s.replace(anchor, `${text}${anchor}`);
  };
}

export interface MutantBuild {
  out: string;
  outcome: BuildOutcome | null;
  /** The failing build's problems, one per line (null when it built). */
  problems: string | null;
}

/** Build the mutant (patched, or unpatched for contrast) into a fresh temp folder. */
export async function buildMutant(dir: string, opts: { unpatched?: boolean; patches?: Patch[] } = {}): Promise<MutantBuild> {
  const out = path.join(tempDir("am-mutant-out-"), "agent-monitor");
  try {
    const outcome = await build({ upstream: dir, out, stamp: `${out}.stamp.json`, patches: opts.patches ?? allPatches, unpatched: opts.unpatched, force: true, log: () => {} });
    return { out, outcome, problems: null };
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    return { out, outcome: null, problems: err.lines.join("\n") };
  }
}

/** The patches as they were before whole-tree checks: each patch's own targets only (for contrast). */
export const targetsOnly: Patch[] = allPatches.map((p) => ({ ...p, discover: undefined, verifyTree: undefined, reportTree: undefined }));
