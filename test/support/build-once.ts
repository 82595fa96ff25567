// Static and runtime tests check a tree they built themselves (never a leftover .generated/):
// one build of the fixture, and of the real upstream when AGENT_MONITOR_UPSTREAM names a clone
// or mirror, per test file.
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { patches } from "../../patches/index.ts";
import { fixtureUpstreamDir } from "../../scripts/lib/paths.ts";
import { build, type BuildOutcome } from "../../scripts/pipeline/build.ts";

export const realUpstream = process.env.AGENT_MONITOR_UPSTREAM || null;
export const SKIP_REAL = "AGENT_MONITOR_UPSTREAM is not set: skipping the real-upstream variant (set it to a clone or mirror of the upstream to run it)";

const cache = new Map<string, Promise<BuildOutcome>>();

function buildInto(key: string, opts: { upstream: string; ref?: string; unpatched?: boolean }): Promise<BuildOutcome> {
  let p = cache.get(key);
  if (!p) {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), `am-${key}-`)), "agent-monitor");
    p = build({ ...opts, out, stamp: `${out}.stamp.json`, patches, force: true });
    cache.set(key, p);
  }
  return p;
}

/** The patched fixture monitor (offline, what CI checks). */
export const buildFixture = () => buildInto("fixture", { upstream: fixtureUpstreamDir });
/** The unpatched fixture, for contrast tests. */
export const buildFixtureUnpatched = () => buildInto("fixture-unpatched", { upstream: fixtureUpstreamDir, unpatched: true });
/** The patched real upstream at the pin; throws when AGENT_MONITOR_UPSTREAM is unset (guard with realUpstream). */
export function buildReal(ref?: string): Promise<BuildOutcome> {
  if (!realUpstream) throw new Error(SKIP_REAL);
  return buildInto(`real-${ref ?? "pin"}`, { upstream: realUpstream, ref });
}
export function buildRealUnpatched(ref?: string): Promise<BuildOutcome> {
  if (!realUpstream) throw new Error(SKIP_REAL);
  return buildInto(`real-unpatched-${ref ?? "pin"}`, { upstream: realUpstream, ref, unpatched: true });
}

/** Both variants as [label, builder] rows for describe.each; the real one only when available. */
export function trees(): [string, () => Promise<BuildOutcome>][] {
  const rows: [string, () => Promise<BuildOutcome>][] = [["fixture", buildFixture]];
  if (realUpstream) rows.push(["real upstream", () => buildReal()]);
  return rows;
}
