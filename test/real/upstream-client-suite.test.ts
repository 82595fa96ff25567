// Upstream's own client test suite (vitest in client/, its own config and lockfile) passes on the
// patched client sources wherever it passes on the unpatched ones. Both runs share one `npm ci` of
// the client's lockfile (devDependencies and the bundler's optional native packages included, as the
// client step installs it) and run on the project's Node 22 (upstream's engines).
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { ensureNode22 } from "../../scripts/lib/node22.ts";
import { materialize } from "../../scripts/pipeline/materialize.ts";
import { runPatches } from "../../scripts/pipeline/patch.ts";
import { pathWithNodeFirst } from "../../scripts/pipeline/run-logged.ts";
import { buildReal, realUpstream, SKIP_REAL } from "../support/build-once.ts";

type Outcome = Map<string, string>;

/** Run `vitest run` in a client dir; every test's outcome by file and full name. */
function clientSuite(clientDir: string, node: string): Outcome {
  const report = path.join(clientDir, "vitest-report.json");
  const r = spawnSync(node, ["node_modules/vitest/vitest.mjs", "run", "--reporter=json", `--outputFile=${report}`], {
    cwd: clientDir,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    timeout: 15 * 60_000,
    env: { PATH: pathWithNodeFirst(node), HOME: os.tmpdir(), TZ: "UTC", CI: "1" },
  });
  if (!existsSync(report)) throw new Error(`upstream's client suite wrote no report in ${clientDir} (exit ${r.status}): ${(r.stderr || r.stdout).slice(-800)}`);
  const json = JSON.parse(readFileSync(report, "utf8")) as { testResults: Array<{ name: string; assertionResults: Array<{ fullName: string; status: string }> }> };
  const out: Outcome = new Map();
  for (const file of json.testResults) {
    for (const t of file.assertionResults) out.set(`${path.relative(clientDir, file.name)}: ${t.fullName}`, t.status);
  }
  return out;
}

const count = (o: Outcome, status: string) => [...o.values()].filter((s) => s === status).length;

describe.skipIf(!realUpstream)("upstream client test suite (real upstream, vitest on Node 22)", () => {
  it("no test that passes on the unpatched client fails on the patched one", async () => {
    const built = await buildReal();
    const node = ensureNode22();
    const work = mkdtempSync(path.join(os.tmpdir(), "am-client-suite-"));
    try {
      const unpatched = path.join(work, "unpatched");
      const patched = path.join(work, "patched");
      // Upstream's whole client/ (its tests and vitest config too) twice; the second gets the client
      // files the patches change or add, applied as the build applies them (on the materialized tree).
      for (const dir of [unpatched, patched]) cpSync(path.join(built.upstream.dir, "client"), path.join(dir, "client"), { recursive: true, filter: (f) => !f.split(path.sep).includes("node_modules") });
      const staging = path.join(work, "staging");
      materialize(built.upstream.dir, staging, { client: true });
      const run = runPatches(staging, patches);
      expect(run.ok, run.results.filter((r) => r.action === "failed").map((r) => `${r.patch} ${r.file}`).join("; ")).toBe(true);
      const clientFiles = [...run.patchedFiles, ...run.addedFiles].filter((f) => f.startsWith("client/src/"));
      expect(clientFiles.length).toBeGreaterThan(0);
      for (const f of clientFiles) cpSync(path.join(staging, f), path.join(patched, f));

      const install = spawnSync("npm", ["ci", "--include=dev", "--no-audit", "--no-fund"], {
        cwd: path.join(unpatched, "client"),
        encoding: "utf8",
        env: { ...process.env, PATH: pathWithNodeFirst(node) },
      });
      expect(install.status, `npm ci in upstream's client: ${install.stderr.slice(-800)}`).toBe(0);
      symlinkSync(path.join(unpatched, "client", "node_modules"), path.join(patched, "client", "node_modules"), "dir");

      const before = clientSuite(path.join(unpatched, "client"), node);
      const after = clientSuite(path.join(patched, "client"), node);
      const regressions = [...before].filter(([name, s]) => s === "passed" && after.get(name) !== "passed").map(([name]) => `${name}: ${after.get(name) ?? "missing"}`);
      console.log(
        `upstream client suite: unpatched ${count(before, "passed")} passed, ${count(before, "failed")} failed; ` +
          `patched ${count(after, "passed")} passed, ${count(after, "failed")} failed; regressions ${regressions.length}`,
      );
      expect(count(before, "passed")).toBeGreaterThan(50);
      expect(regressions).toEqual([]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 1_800_000);
});

if (!realUpstream) describe("upstream client test suite (real upstream, vitest on Node 22)", () => it.skip(SKIP_REAL, () => {}));
