// CI has no upstream, but it can still catch a patch (or the engine) that changed while the
// committed build-stamp.json was not rebuilt.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isClientFile } from "../../patches/define-patch.ts";
import { patches } from "../../patches/index.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { readPin } from "../../scripts/lib/pin.ts";
import { SERVER_READS } from "../../scripts/pipeline/client.ts";
import { currentInputs, diffInputs, type BuildStamp } from "../../scripts/pipeline/stamp.ts";

describe("committed build-stamp.json", () => {
  const stamp = JSON.parse(readFileSync(path.join(repoRoot, "build-stamp.json"), "utf8")) as BuildStamp;

  it("describes the pinned release", () => {
    const pin = readPin();
    expect(stamp.upstream).toMatchObject({ repository: pin.repository, tag: pin.tag, commit: pin.commit });
    // Every server-side file a patch edits and every runtime module it adds is hashed (not just "many
    // files"). Client sources are not shipped: what ships of them is client/dist, built from them.
    const runtimes = readdirSync(path.join(repoRoot, "patches", "runtime")).filter((f) => f.endsWith(".js")).map((f) => `server/patch-runtime/${f}`);
    const shipped = [...new Set(patches.flatMap((p) => p.targets))].filter((f) => !isClientFile(f));
    for (const file of [...shipped, ...runtimes]) expect(stamp.outputs[file], file).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(stamp.outputs).some((f) => f.startsWith("client/dist/assets/")), "client/dist is stamped").toBe(true);
  });

  it("covers what the app bundles: the built client and the installed runtime deps", () => {
    expect(stamp.outputs["client/dist/index.html"]).toMatch(/^[0-9a-f]{64}$/);
    // No client sources beyond the ones the server itself reads (favicon.svg from client/public).
    expect(Object.keys(stamp.outputs).filter((f) => f.startsWith("client/") && !f.startsWith("client/dist/"))).toEqual(SERVER_READS);
    expect(stamp.client?.inputHash).toMatch(/^[0-9a-f]{16}$/);
    expect(stamp.runtimeDeps).toMatchObject({ tree: expect.stringMatching(/^[0-9a-f]{64}$/), packages: expect.any(Number), files: expect.any(Number) });
    expect(stamp.runtimeDeps!.packages).toBeGreaterThan(10);
  });

  it("matches the current patches, engine and lockfile (else: rebuild against the real upstream and commit the stamp)", () => {
    expect(diffInputs(stamp, currentInputs(patches, stamp.inputs.nodeMajor))).toEqual([]);
    expect(stamp.inputs.nodeMajor).toBe(22);
  });
});
