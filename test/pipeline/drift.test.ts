// A commit where a patch target was removed upstream: the build names the patch, the file, the
// shape it expected and the nearest candidate with its line, and the previous output stays.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { fixtureUpstreamDir } from "../../scripts/lib/paths.ts";
import { build, BuildError, check } from "../../scripts/pipeline/build.ts";
import { renderProblem } from "../../patches/lib/errors.ts";
import { gitCommitAll } from "../support/toy.ts";

describe("upstream drift on the fixture monitor", () => {
  it("a renamed route fails the build precisely and leaves the previous tree in place", async () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "am-drift-")), "agent-monitor");
    const stamp = `${out}.stamp.json`;
    await build({ upstream: fixtureUpstreamDir, out, stamp, patches });
    const before = readFileSync(path.join(out, "server/routes/hooks.js"), "utf8");

    const drifted = mkdtempSync(path.join(os.tmpdir(), "am-drifted-"));
    cpSync(fixtureUpstreamDir, drifted, { recursive: true });
    const hooks = path.join(drifted, "server/routes/hooks.js");
    const text = readFileSync(hooks, "utf8");
    expect(text).toContain('router.post("/event",');
    writeFileSync(hooks, text.replace('router.post("/event",', 'router.post("/events",'));
    const commit = gitCommitAll(drifted);
    const line = text.slice(0, text.indexOf('router.post("/event",')).split("\n").length;

    let err: unknown;
    try {
      await build({ upstream: drifted, ref: commit, out, stamp, patches, force: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BuildError);
    const problems = (err as BuildError).lines.join("\n");
    expect(problems).toContain('[write-queue] server/routes/hooks.js: expected 1 call router.post("/event", …) but found 0.');
    // Earlier patches moved the route down; the message also names upstream's own line.
    expect(problems).toMatch(new RegExp(`Nearest candidate: line \\d+ \\(upstream line ${line}\\): router\\.post\\("/events", \\(req, res\\) => \\{`));
    expect(problems).toContain(`(upstream: ${commit.slice(0, 7)})`);
    // The same, as data: the nearest candidate's line in the text the patch saw, and upstream's.
    expect((err as BuildError).problems.find((p) => p.patch === "write-queue")).toMatchObject({ file: "server/routes/hooks.js", upstreamLine: line, line: expect.any(Number) });
    expect(readFileSync(path.join(out, "server/routes/hooks.js"), "utf8")).toBe(before);
    expect(check({ out, stamp, upstream: fixtureUpstreamDir, patches }).ok).toBe(true);
  });

  it("a failed prerequisite makes its dependents 'skipped (needs <id>)': the first line is the cause", async () => {
    const drifted = mkdtempSync(path.join(os.tmpdir(), "am-drifted-needs-"));
    cpSync(fixtureUpstreamDir, drifted, { recursive: true });
    const hooks = path.join(drifted, "server/routes/hooks.js");
    const text = readFileSync(hooks, "utf8");
    const from = "const processEvent = db.transaction((hookType, data) => {";
    expect(text).toContain(from);
    writeFileSync(hooks, text.replace(from, "const processEvent = db.transaction((hookType, data, options) => {"));
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "am-needs-")), "agent-monitor");

    const err = await build({ upstream: drifted, out, patches, force: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    const { lines: problems, results } = err as BuildError;
    expect(problems[0]).toContain("[transcript-outside-lock] server/routes/hooks.js:");
    expect(problems[0]).toContain("takes 3 parameter(s)");
    expect(problems.filter((p) => !p.includes("skipped (needs"))).toEqual([problems[0]]);
    const skipped = (id: string) => results.filter((r) => r.patch === id).map((r) => `${r.action} ${r.problem ? renderProblem(r.problem) : ""}`);
    expect(skipped("write-queue")).toEqual(expect.arrayContaining([`skipped [write-queue] server/routes/hooks.js: skipped (needs transcript-outside-lock)`]));
    expect(skipped("write-queue").every((l) => l.startsWith("skipped"))).toBe(true);
    // Transitively: these need write-queue.
    for (const id of ["parse-transcripts-off-loop", "session-end-is-final"]) {
      expect(skipped(id).length).toBeGreaterThan(0);
      expect(skipped(id).every((l) => l.includes("skipped (needs write-queue)"))).toBe(true);
    }
    // Patches that do not need it still ran.
    expect(results.filter((r) => r.patch === "atomic-watchdog").map((r) => r.action)).toEqual(["applied"]);
  });
});
