// npm run drift's matrix and npm run bump, on a git repository of the fixture monitor with a few
// tagged upstream "releases"; pin, stamp and output are temp copies (the real ones are never touched).
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { bump, BumpRefused, serializePin } from "../../scripts/bump.ts";
import { isClean, matrixMarkdown, matrixText, runDrift } from "../../scripts/drift.ts";
import { fixtureUpstreamDir } from "../../scripts/lib/paths.ts";
import { type Pin, readPin } from "../../scripts/lib/pin.ts";
import { build, check } from "../../scripts/pipeline/build.ts";
import { realUpstream, SKIP_REAL } from "../support/build-once.ts";
import { gitCommitAll } from "../support/toy.ts";

const HOOKS = "server/routes/hooks.js";
const tmp = (name: string) => mkdtempSync(path.join(os.tmpdir(), `am-bump-${name}-`));

/** Tags: base; watchdog (a statement added in watchdogCheck); broken (transcript-outside-lock cannot apply); gate (a patched file V8 rejects). */
function fixtureReleases(): { repo: string; sha: Record<string, string> } {
  const repo = tmp("upstream");
  cpSync(fixtureUpstreamDir, repo, { recursive: true });
  const sha: Record<string, string> = {};
  const edit = (file: string, from: string, to: string) => {
    const abs = path.join(repo, file);
    const text = readFileSync(abs, "utf8");
    expect(text).toContain(from);
    writeFileSync(abs, text.replace(from, to));
  };
  sha.base = gitCommitAll(repo, "base");
  edit(HOOKS, "function watchdogCheck() {\n  try {\n", "function watchdogCheck() {\n  try {\n    const startedAt = Date.now();\n");
  sha.watchdog = gitCommitAll(repo, "watchdog");
  edit(HOOKS, "db.transaction((hookType, data) => {", "db.transaction((hookType, data, options) => {");
  sha.broken = gitCommitAll(repo, "broken");
  edit(HOOKS, "db.transaction((hookType, data, options) => {", "db.transaction((hookType, data) => {");
  const ws = path.join(repo, "server/websocket.js");
  writeFileSync(ws, `${readFileSync(ws, "utf8")}\nconst duplicated = 1;\nconst duplicated = 2;\n`);
  sha.gate = gitCommitAll(repo, "gate");
  return { repo, sha };
}

describe("drift matrix and bump on fixture releases", () => {
  let repo: string;
  let sha: Record<string, string>;
  let pin: Pin;
  let dir: string;
  let pinFile: string;
  let stampFile: string;
  let out: string;

  beforeAll(async () => {
    ({ repo, sha } = fixtureReleases());
    dir = tmp("repo");
    pinFile = path.join(dir, "upstream.pin.json");
    stampFile = path.join(dir, "build-stamp.json");
    out = path.join(dir, "generated", "agent-monitor");
    pin = { ...readPin(), tag: "base", commit: sha.base, releases: { base: sha.base } };
    writeFileSync(pinFile, serializePin(pin));
    await build({ upstream: repo, ref: "base", pin, out, stamp: stampFile, patches, force: true, reviewed: null });
  }, 60_000);

  it("drift: applied / re-review / failed with its reason / skipped (needs …), per patch and ref", async () => {
    const cols = await runDrift({ upstream: repo, refs: ["base", "watchdog", "broken"], pin, reviewed: stampFile, workDir: tmp("drift") });
    const ids = patches.map((p) => p.id);
    const status = (ref: string, id: string) => cols.find((c) => c.ref === ref)!.cells[id].status;
    expect(ids.map((id) => status("base", id))).toEqual(ids.map(() => "applied"));
    expect(ids.filter((id) => status("watchdog", id) === "re-review")).toEqual(["atomic-watchdog"]);
    expect(cols[1].cells["atomic-watchdog"].reason).toBe(`${HOOKS} watchdogCheck: 1 statement added`);
    expect(status("broken", "transcript-outside-lock")).toBe("failed");
    expect(cols[2].cells["transcript-outside-lock"].reason).toContain("takes 3 parameter(s)");
    expect(cols[2].cells["write-queue"]).toEqual({ status: "skipped", reason: "skipped (needs transcript-outside-lock)" });
    expect(status("broken", "atomic-watchdog")).toBe("re-review");
    expect([isClean(cols[0], true), isClean(cols[1], false), isClean(cols[1], true), isClean(cols[2], false)]).toEqual([true, true, false, false]);
    const text = matrixText(cols, ids);
    expect(text.split("\n")[0].split(/\s+/)).toEqual(["patch", "base", "watchdog", "broken"]);
    expect(text).toMatch(/^write-queue +applied +applied +skipped \[\d+\]$/m);
    const md = matrixMarkdown(cols, ids, "t");
    expect(md).toContain(`| patch | base (${sha.base.slice(0, 7)}) | watchdog (${sha.watchdog.slice(0, 7)}) | broken |`);
    expect(md).toMatch(/^\| atomic-watchdog \| applied \| re-review \[(\d+)\] \| re-review \[\d+\] \|$/m);
    expect(md).toContain("watchdog atomic-watchdog: re-review: server/routes/hooks.js watchdogCheck: 1 statement added");
  }, 60_000);

  it("bump to a release that fails a gate, or a patch, changes nothing", async () => {
    const before = [readFileSync(pinFile, "utf8"), readFileSync(stampFile, "utf8")];
    for (const [to, expected] of [["gate", "Identifier 'duplicated' has already been declared"], ["broken", "transcript-outside-lock: failed"]] as const) {
      const err = await bump({ to, upstream: repo, pinFile, stampFile, out }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BumpRefused);
      expect((err as BumpRefused).problems.join("\n")).toContain(expected);
      expect([readFileSync(pinFile, "utf8"), readFileSync(stampFile, "utf8")]).toEqual(before);
      expect(check({ out, stamp: stampFile, patches, pin }).problems).toEqual([]);
    }
  }, 60_000);

  it("bump to a new tag: SHA from the mirror, pin and stamp updated, per-patch diffs and re-review notes printed", async () => {
    const lines: string[] = [];
    const res = await bump({ to: "watchdog", upstream: repo, pinFile, stampFile, out, log: (l) => lines.push(l) });
    const log = lines.join("\n");
    expect(readPin(pinFile)).toEqual({ ...pin, tag: "watchdog", commit: sha.watchdog, releases: { base: sha.base, watchdog: sha.watchdog } });
    const stamp = JSON.parse(readFileSync(stampFile, "utf8"));
    expect(stamp.upstream).toMatchObject({ tag: "watchdog", commit: sha.watchdog });
    expect(res.stampChanges[0]).toBe(`upstream: base (${sha.base.slice(0, 7)}) -> watchdog (${sha.watchdog.slice(0, 7)})`);
    expect(res.stampChanges).toContain(`  changed: ${HOOKS}, ${HOOKS}.map`);
    expect(res.stampChanges.some((c) => /^fingerprints: \d+ anchored upstream units, 1 changed, 0 new, 0 gone$/.test(c))).toBe(true);
    expect(log).toContain(`# atomic-watchdog: ${HOOKS} (+`);
    expect(log).toContain(`applies — re-review: atomic-watchdog ${HOOKS} watchdogCheck changed upstream since base: 1 statement added`);
    expect(res.commitCommand).toMatch(/^git add .*upstream\.pin\.json .*build-stamp\.json && git commit -m "Bump upstream to watchdog \([0-9a-f]{7}\)"$/);
    expect(check({ out, stamp: stampFile, patches, pin: readPin(pinFile) }).problems).toEqual([]);
    // The new stamp is the reviewed one now: building the same release again has nothing to re-review.
    const again = await build({ upstream: repo, ref: "watchdog", pin: readPin(pinFile), out: path.join(tmp("again"), "agent-monitor"), patches, force: true, reviewed: stampFile });
    expect(again.reviews).toEqual([]);
  }, 60_000);

  it("refuses an unknown ref with a one-line error", async () => {
    await expect(bump({ to: "v9.9.9", upstream: repo, pinFile, stampFile, out })).rejects.toThrow(/--to v9\.9\.9 is neither a tag of .* nor a full 40-hex commit/);
  });
});

describe.skipIf(!realUpstream)("bump on the real upstream", () => {
  it("v2.0.2 -> v2.0.3 on a scratch pin and stamp", async () => {
    const dir = tmp("real");
    const pinFile = path.join(dir, "upstream.pin.json");
    const stampFile = path.join(dir, "build-stamp.json");
    const out = path.join(dir, "agent-monitor");
    const real = readPin();
    const pin = { ...real, tag: "v2.0.2", commit: real.releases["v2.0.2"] };
    writeFileSync(pinFile, serializePin(pin));
    await build({ upstream: realUpstream!, ref: "v2.0.2", pin, out, stamp: stampFile, patches, force: true, reviewed: null });
    const res = await bump({ to: "v2.0.3", upstream: realUpstream!, pinFile, stampFile, out });
    expect(readPin(pinFile)).toEqual({ ...real, tag: "v2.0.3", commit: real.releases["v2.0.3"] });
    expect(JSON.parse(readFileSync(stampFile, "utf8")).upstream).toMatchObject({ tag: "v2.0.3", commit: real.releases["v2.0.3"] });
    expect(res.stampChanges[0]).toMatch(/^upstream: v2\.0\.2 \(5bbd1fd\) -> v2\.0\.3 \(edd7a75\)$/);
  }, 120_000);
});
if (!realUpstream) describe("bump on the real upstream", () => it.skip(SKIP_REAL, () => {}));
