import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BUILD_CLI } from "../../scripts/build.ts";
import { build, BuildError, check } from "../../scripts/pipeline/build.ts";
import { listMaterializable, MATERIALIZED_ENTRIES, materialize } from "../../scripts/pipeline/materialize.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { makeToyUpstream, toyPatch } from "../support/toy.ts";

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));
const fileHash = (f: string) => execFileSync("sha256sum", [f], { encoding: "utf8" }).split(" ")[0];

function toyBuild(upstream: string, out: string, extra: Partial<Parameters<typeof build>[0]> = {}) {
  return build({ upstream, out, stamp: `${out}.stamp.json`, patches: [toyPatch], client: false, install: false, ...extra });
}

describe("materialize", () => {
  it("copies exactly the declared runtime entries", () => {
    expect(MATERIALIZED_ENTRIES).toEqual(["server", "scripts", "package.json", "package-lock.json", "LICENSE", "client"]);
    const up = makeToyUpstream({ "client/app.js": "x\n", "client/dist/old.js": "built\n", "client/node_modules/v/index.js": "x\n", "server/node_modules/x/index.js": "x\n", "docs/a.md": "x\n" });
    const m = materialize(up, path.join(tmp("mat-"), "t"));
    expect(m.files).toEqual(["LICENSE", "client/app.js", "package-lock.json", "package.json", "scripts/hook-handler.js", "server/db.js", "server/index.js"]);
    expect(listMaterializable(up)).toEqual(m.files);
    const sourcesOnly = materialize(up, path.join(tmp("mat-"), "t"), { client: false });
    expect(sourcesOnly.files).toEqual(m.files.filter((f) => !f.startsWith("client/")));
  });

  it("names what is missing from a tree that is not the monitor", () => {
    const dir = makeToyUpstream();
    unlinkSync(path.join(dir, "LICENSE"));
    expect(() => materialize(dir, path.join(tmp("mat-"), "t"))).toThrow("upstream tree lacks LICENSE");
  });
});

describe("build", () => {
  it("builds, stamps, skips an unchanged rebuild, and --check catches hand edits and changed inputs", async () => {
    const up = makeToyUpstream();
    const out = path.join(tmp("out-"), "agent-monitor");
    const first = await toyBuild(up, out);
    expect(first.status).toBe("built");
    expect(first.results.map((r) => r.action)).toEqual(["applied", "applied"]);
    expect(readFileSync(path.join(out, "server/db.js"), "utf8")).toContain("[patch:toy-busy-timeout]");
    expect(existsSync(path.join(out, "server/db.js.map"))).toBe(true);
    expect(existsSync(path.join(out, "README.md"))).toBe(false);
    expect(readFileSync(`${out}.patches.diff`, "utf8")).toContain('+db.pragma("busy_timeout = 1"); /* [patch:toy-busy-timeout] */');
    expect(Object.keys(first.stamp.outputs)).toContain("server/lib/toy-added.js");
    expect(first.stamp.outputs["server/db.js"]).toBe(fileHash(path.join(out, "server/db.js")));

    expect((await toyBuild(up, out)).status).toBe("up-to-date");
    const args = { out, stamp: `${out}.stamp.json`, upstream: up, patches: [toyPatch] };
    expect(check(args)).toMatchObject({ ok: true, problems: [] });

    appendFileSync(path.join(out, "server/index.js"), "// hand edit\n");
    unlinkSync(path.join(out, "scripts/hook-handler.js"));
    expect(check(args).problems).toEqual(["scripts/hook-handler.js is missing", "server/index.js was edited by hand (hash differs from the stamp)"]);

    const changed = { ...toyPatch, description: "changed" };
    expect(check({ ...args, patches: [changed] }).problems).toContain("patch toy-busy-timeout changed since the stamp");

    // A damaged output is rebuilt, not skipped.
    expect((await toyBuild(up, out)).status).toBe("built");
    expect(check(args).ok).toBe(true);
  });

  it("is reproducible: two clean builds give byte-identical stamps", async () => {
    const up = makeToyUpstream();
    const out = path.join(tmp("out-"), "agent-monitor");
    await toyBuild(up, out);
    const a = readFileSync(`${out}.stamp.json`, "utf8");
    rmSync(out, { recursive: true });
    rmSync(`${out}.stamp.json`);
    await toyBuild(up, out, { force: true });
    expect(readFileSync(`${out}.stamp.json`, "utf8")).toBe(a);
    expect(a).not.toMatch(/"(time|date|built_?at)"/i);
  });

  it("a drifted upstream fails with the precise message and leaves the previous output untouched", async () => {
    const out = path.join(tmp("out-"), "agent-monitor");
    await toyBuild(makeToyUpstream(), out);
    const before = readFileSync(path.join(out, "server/db.js"), "utf8");
    const drifted = makeToyUpstream({ "server/db.js": 'const db = open();\ndb.pragma("journal_mode = DELETE");\n' });
    let err: unknown;
    try {
      await toyBuild(drifted, out, { force: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).lines).toEqual([
      '[toy-busy-timeout] server/db.js: expected 1 call db.pragma("journal_mode = WAL", …) but found 0. Nearest candidate: line 2: db.pragma("journal_mode = DELETE"). Renamed or removed upstream? (upstream: plain directory (no commit))',
    ]);
    expect(readFileSync(path.join(out, "server/db.js"), "utf8")).toBe(before);
    expect(check({ out, stamp: `${out}.stamp.json`, upstream: drifted, patches: [toyPatch] }).ok).toBe(true);
  });

  it("a PatchSet is loaded only when the build is not a no-op; a new sources hash (patch sources changed) loads and rebuilds", async () => {
    const up = makeToyUpstream();
    const out = path.join(tmp("out-"), "agent-monitor");
    let loads = 0;
    const set = (sourcesHash: string, patch = toyPatch) => ({ sourcesHash, load: async () => (loads++, [patch]) });
    const fp = `test-${process.pid}-${Date.now()}`;
    expect((await toyBuild(up, out, { patches: set(fp) })).status).toBe("built");
    expect(loads).toBe(1);
    expect((await toyBuild(up, out, { patches: set(fp) })).status).toBe("up-to-date");
    expect(loads).toBe(1); // the hashes were remembered under the sources hash
    const changed = { ...toyPatch, description: "changed" };
    const r = await toyBuild(up, out, { patches: set(`${fp}-edited`, changed) });
    expect(loads).toBe(2);
    expect(r.status).toBe("built");
  });

  it("the gate's node --check (run through zx) fails a patch that leaves invalid JavaScript, naming the file", async () => {
    const broken = { ...toyPatch, id: "toy-broken", apply(file: Parameters<typeof toyPatch.apply>[0]) {
      toyPatch.apply.call(this, file);
      file.edit.append("\nconst = ;\n");
    } };
    const out = path.join(tmp("out-"), "agent-monitor");
    const err = await toyBuild(makeToyUpstream(), out, { patches: [broken] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).step).toBe("gate");
    expect((err as BuildError).lines.join("\n")).toMatch(/^syntax: server\/db\.js: .*SyntaxError/m);
    expect(existsSync(out)).toBe(false);
  });

  it("--unpatched builds upstream as is", async () => {
    const up = makeToyUpstream();
    const out = path.join(tmp("out-"), "plain");
    const r = await toyBuild(up, out, { unpatched: true });
    expect(r.stamp.inputs.patches).toEqual([]);
    expect(readFileSync(path.join(out, "server/db.js"), "utf8")).toBe(readFileSync(path.join(up, "server/db.js"), "utf8"));
  });
});

describe("CLI", () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", path.join(repoRoot, "scripts/build.ts"), ...args], { encoding: "utf8", cwd: repoRoot });

  it("--help is generated from the declarations: every declared flag with its value name", () => {
    const r = cli("--help");
    expect(r.status).toBe(0);
    const declared = Object.entries(BUILD_CLI.options);
    expect(declared.length).toBeGreaterThan(8);
    for (const [name, o] of declared) expect(r.stdout).toMatch(new RegExp(`^  --${name}${"value" in o && o.value ? ` ${o.value}` : ""}  `, "m"));
    expect(r.stdout).toMatch(/^Usage: npm run build -- \[flags\]$/m);
    expect(r.stdout).toMatch(/^  -h, --help  +show this help$/m);
  });

  it("an unknown flag, a missing or empty value is one line naming the flag and pointing at --help, exit 1", () => {
    for (const [args, line] of [
      [["--frobnicate"], "error: unknown flag --frobnicate; see npm run build -- --help"],
      [["--ref="], "error: --ref needs a value (<ref>); see npm run build -- --help"],
      [["--out", "--force"], "error: --out needs a value (<dir>); see npm run build -- --help"],
      [["--force=yes"], "error: --force takes no value; see npm run build -- --help"],
      [["v2.0.3"], 'error: unexpected argument "v2.0.3"; see npm run build -- --help'],
    ] as const) {
      const r = cli(...args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr.trim()).toBe(line);
    }
  });

  it("the README's flag table lists exactly the declared flags", () => {
    const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const table = readme.slice(readme.indexOf("### Flags (`npm run build -- --help`)"));
    const rows = table.slice(0, table.search(/\n\n(?!\|)/) + 1);
    const listed = [...rows.matchAll(/^\| `(--[^`]+)`/gm)].map((m) => m[1]);
    expect(listed).toEqual(Object.entries(BUILD_CLI.options).map(([name, o]) => `--${name}${"value" in o && o.value ? ` ${o.value}` : ""}`));
  });

  it("a plain-directory build gets its own stamp, never the committed build-stamp.json", async () => {
    const up = makeToyUpstream();
    const outDir = path.join(tmp("cli-"), "m");
    const stampBefore = existsSync(path.join(repoRoot, "build-stamp.json")) ? readFileSync(path.join(repoRoot, "build-stamp.json"), "utf8") : null;
    const r = cli("--upstream", up, "--out", outDir, "--unpatched", "--no-client", "--no-install");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\[1\/5\] fetch .*\n\[2\/5\] materialize .*\n\[3\/5\] patch .*\n\[4\/5\] gate .*\n\[5\/5\] stamp /);
    expect(existsSync(`${outDir}.stamp.json`)).toBe(true);
    const stampAfter = existsSync(path.join(repoRoot, "build-stamp.json")) ? readFileSync(path.join(repoRoot, "build-stamp.json"), "utf8") : null;
    expect(stampAfter).toBe(stampBefore);
    writeFileSync(path.join(outDir, "server/db.js"), "edited\n");
    const c = cli("--check", "--upstream", up, "--out", outDir, "--unpatched");
    expect(c.status).toBe(1);
    expect(c.stderr).toContain("server/db.js was edited by hand");
  });
});
