// The build's steps are one declared list: its order (client patches before the client build),
// which steps each option set runs, and the README's step table generated from it.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { BUILD_STEPS, clientMode, stepsFor, stepTable } from "../../scripts/pipeline/build.ts";

const names = (opts: Parameters<typeof stepsFor>[0]) => stepsFor(opts).map((s) => s.name);

describe("build steps", () => {
  it("patch and gate run before the client is built; each option set runs its steps", () => {
    expect(BUILD_STEPS.map((s) => s.name)).toEqual(["fetch", "materialize", "patch", "gate", "client", "install", "stamp"]);
    expect(names({ patches: [] })).toEqual(["fetch", "materialize", "patch", "gate", "client", "install", "stamp"]);
    expect(names({ patches: [], client: false, install: false })).toEqual(["fetch", "materialize", "patch", "gate", "stamp"]);
    expect(names({ patches: [], client: "sources", install: false })).toEqual(["fetch", "materialize", "patch", "gate", "stamp"]);
    expect(names({ patches: [], unpatched: true, install: false })).toEqual(["fetch", "materialize", "patch", "gate", "client", "stamp"]);
    expect([clientMode({}), clientMode({ client: true }), clientMode({ client: false }), clientMode({ client: "sources" })]).toEqual(["build", "build", false, "sources"]);
    for (const s of BUILD_STEPS) expect(s.description, s.name).not.toMatch(/\n|\|/); // one line, a table cell
  });

  it("README.md carries the step table generated from BUILD_STEPS", () => {
    const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const between = readme.split("<!-- build-steps -->\n")[1]?.split("\n<!-- /build-steps -->")[0];
    expect(between, "README.md lacks the <!-- build-steps --> block").toBeDefined();
    expect(between).toBe(stepTable());
  });
});
