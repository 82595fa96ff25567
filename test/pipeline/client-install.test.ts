// The client and install steps on the fixture monitor: what ran (logs per build), the cache,
// --check naming hand edits under client/dist and node_modules, --no-client/--no-install, and a
// failing client build reporting its log. The fixture client has no dependencies, so its npm ci
// is offline; the fixture's runtime deps (express, ws, uuid) come from the npm registry once.
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { fixtureUpstreamDir, repoRoot } from "../../scripts/lib/paths.ts";
import { build, check } from "../../scripts/pipeline/build.ts";
import { packageOf } from "../../scripts/pipeline/install.ts";
import { CommandError } from "../../scripts/pipeline/run-logged.ts";
import { manifestFile } from "../../scripts/pipeline/stamp.ts";

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));

/** A private copy of the fixture whose client inputs are unique, so its first build is a cache miss. */
function fixtureCopy(): string {
  const dir = path.join(tmp("fx-client-"), "upstream");
  cpSync(fixtureUpstreamDir, dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}node_modules`) && !src.endsWith(`${path.sep}dist`) });
  writeFileSync(path.join(dir, "client/src/unique.txt"), `${process.pid}-${Date.now()}-${Math.random()}\n`);
  return dir;
}

const logsIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

describe("client + install steps", () => {
  it("builds client/dist once; a patch-only change takes it from the cache without running npm", async () => {
    const up = fixtureCopy();
    const out = path.join(tmp("fx-out-"), "agent-monitor");
    const logsA = tmp("logs-a-");
    const first = await build({ upstream: up, out, stamp: `${out}.stamp.json`, patches: [], logDir: logsA });
    expect(first.client?.cached).toBe(false);
    expect(logsIn(logsA)).toEqual(expect.arrayContaining(["client-build.log", "client-npm-ci.log"]));
    expect(readFileSync(path.join(logsA, "client-build.log"), "utf8")).toContain("fixture client build:");
    // Only dist is shipped: no client sources, lockfile or node_modules.
    expect(readdirSync(path.join(out, "client"))).toEqual(["dist"]);
    // The fixture's build copies index.html and bundles the TSX pages (unique.txt only makes this test's cache key its own).
    expect(readdirSync(path.join(out, "client/dist")).sort()).toEqual(["index.html", "pages.js"]);
    expect(Object.keys(first.stamp.outputs).filter((f) => f.startsWith("client/")).sort()).toEqual(["client/dist/index.html", "client/dist/pages.js"]);
    // Runtime deps are the output's own.
    for (const dep of ["express", "ws", "uuid"]) expect(existsSync(path.join(out, "node_modules", dep, "package.json"))).toBe(true);
    expect(first.stamp.runtimeDeps).toMatchObject({ packages: expect.any(Number), tree: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(existsSync(manifestFile(out))).toBe(true);

    const logsB = tmp("logs-b-");
    const second = await build({ upstream: up, out, stamp: `${out}.stamp.json`, patches: [patches[0]], logDir: logsB });
    expect(second.status).toBe("built");
    expect(second.client).toMatchObject({ cached: true, inputHash: first.client!.inputHash });
    expect(second.installed?.ranNpm).toBe(false);
    expect(logsIn(logsB)).toEqual([]); // neither npm nor the client build ran
    expect(second.stamp.runtimeDeps?.tree).toBe(first.stamp.runtimeDeps?.tree);

    // A client source change is a miss again.
    writeFileSync(path.join(up, "client/src/index.html"), "<!doctype html><title>changed</title>\n");
    const logsC = tmp("logs-c-");
    const third = await build({ upstream: up, out, stamp: `${out}.stamp.json`, patches: [patches[0]], logDir: logsC });
    expect(third.client?.cached).toBe(false);
    expect(logsIn(logsC)).toContain("client-build.log");
    expect(readFileSync(path.join(out, "client/dist/index.html"), "utf8")).toContain("changed");
  });

  it("the no-op check and --check catch hand edits under client/dist and node_modules, naming file and package", async () => {
    const out = path.join(tmp("fx-out-"), "agent-monitor");
    const opts = { upstream: fixtureUpstreamDir, out, stamp: `${out}.stamp.json`, patches: [] };
    await build(opts);
    expect(check(opts)).toMatchObject({ ok: true });
    expect((await build(opts)).status).toBe("up-to-date");

    appendFileSync(path.join(out, "client/dist/index.html"), "<!-- hand edit -->\n");
    appendFileSync(path.join(out, "node_modules/express/lib/router/index.js"), "// hand edit\n");
    rmSync(path.join(out, "node_modules/ws/README.md"));
    writeFileSync(path.join(out, "node_modules/uuid/extra.js"), "1\n");
    expect(check(opts).problems.sort()).toEqual([
      "client/dist/index.html was edited by hand (hash differs from the stamp)",
      "node_modules/express was changed by hand (lib/router/index.js edited)",
      "node_modules/uuid was changed by hand (extra.js added)",
      "node_modules/ws was changed by hand (README.md missing)",
    ]);
    // A damaged output is rebuilt, not skipped.
    expect((await build(opts)).status).toBe("built");
    expect(check(opts).ok).toBe(true);

    // An edit that keeps size and mtime escapes the no-op stat check but never --check.
    const f = path.join(out, "node_modules/express/index.js");
    const text = readFileSync(f, "utf8");
    const { atime, mtime } = statSync(f);
    writeFileSync(f, text.replace(/e/, "E"));
    utimesSync(f, atime, mtime);
    expect(check(opts).problems).toEqual(["node_modules/express was changed by hand (index.js edited)"]);

    rmSync(manifestFile(out));
    expect(check(opts).problems).toEqual(["node_modules/ differs from the stamp (no manifest beside the output to name the package; rebuild)"]);
  });

  it("--no-client / --no-install build the sources-only tree, and switching back rebuilds", async () => {
    const out = path.join(tmp("fx-out-"), "agent-monitor");
    const opts = { upstream: fixtureUpstreamDir, out, stamp: `${out}.stamp.json`, patches: [] };
    const bare = await build({ ...opts, client: false, install: false });
    expect(existsSync(path.join(out, "client"))).toBe(false);
    expect(existsSync(path.join(out, "node_modules"))).toBe(false);
    expect(existsSync(manifestFile(out))).toBe(false);
    expect(bare.stamp.client).toBeUndefined();
    expect(bare.stamp.runtimeDeps).toBeUndefined();
    expect(check(opts).ok).toBe(true);
    expect((await build({ ...opts, client: false, install: false })).status).toBe("up-to-date");
    const full = await build(opts);
    expect(full.status).toBe("built");
    expect(existsSync(path.join(out, "client/dist/index.html"))).toBe(true);
    expect(existsSync(path.join(out, "node_modules/express"))).toBe(true);
  });

  it("a failing client build is one line plus the log's last lines and path; the previous output stays", async () => {
    const up = fixtureCopy();
    writeFileSync(path.join(up, "client/build.js"), 'console.log("bundling step 1");\nconsole.error("Error: cannot resolve ./missing-module");\nprocess.exit(3);\n');
    const out = path.join(tmp("fx-out-"), "agent-monitor");
    const logDir = tmp("logs-fail-");
    let err: unknown;
    try {
      await build({ upstream: up, out, stamp: `${out}.stamp.json`, patches: [], logDir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CommandError);
    const se = err as CommandError;
    expect(se.message).toMatch(/^client: npm run build failed \(exit code 3 after [\d.]+s\); full log: .*client-build\.log$/);
    expect(se.logFile).toBe(path.join(logDir, "client-build.log"));
    expect(se.tail.join("\n")).toContain("Error: cannot resolve ./missing-module");
    expect(readFileSync(se.logFile, "utf8")).toContain("bundling step 1");
    expect(existsSync(out)).toBe(false);

    // The CLI prints the same as one error line, then the tail.
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(repoRoot, "scripts/build.ts"), "--upstream", up, "--out", out, "--unpatched", "--no-install"], { encoding: "utf8", cwd: repoRoot });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines[0]).toMatch(/^error: client: npm run build failed \(exit code 3 .*full log: \.cache\/logs\/client-build\.log$/);
    expect(lines[1]).toBe("last lines of .cache/logs/client-build.log:");
    expect(lines.slice(2).join("\n")).toContain("  | Error: cannot resolve ./missing-module");
  });

  it("names the package a node_modules path belongs to", () => {
    expect(packageOf("express/lib/router/index.js")).toBe("express");
    expect(packageOf("@scope/pkg/dist/a.js")).toBe("@scope/pkg");
    expect(packageOf("a/node_modules/b/index.js")).toBe("a/node_modules/b");
    expect(packageOf("a/node_modules/@s/b/index.js")).toBe("a/node_modules/@s/b");
    expect(packageOf(".package-lock.json")).toBe(".package-lock.json");
  });
});

describe("no-op build", () => {
  it("skips without loading the TypeScript compiler (a build that works does load it)", () => {
    const out = path.join(tmp("fx-noop-"), "agent-monitor");
    const probe = path.join(repoRoot, "test/support/loaded-modules.mjs");
    const cli = () =>
      spawnSync(process.execPath, ["--import", "tsx", "--import", probe, path.join(repoRoot, "scripts/build.ts"), "--upstream", fixtureUpstreamDir, "--out", out], { encoding: "utf8", cwd: repoRoot });
    const loaded = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("loaded-module: "));
    const first = cli();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain("built ");
    expect(loaded(first.stderr).some((l) => /typescript\.js$/.test(l))).toBe(true); // ts-morph bundles the compiler
    const second = cli();
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toContain("up to date");
    expect(loaded(second.stderr)).toEqual([]);
  });
});
