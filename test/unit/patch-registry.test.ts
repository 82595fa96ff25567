import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";

const dir = path.join(repoRoot, "patches");
const patchFiles = readdirSync(dir).filter((f) => f.endsWith(".ts") && !["index.ts", "define-patch.ts"].includes(f));

describe("patch registry", () => {
  it("registers every patch file exactly once, with id = file name", () => {
    expect(patches.map((p) => `${p.id}.ts`).sort()).toEqual(patchFiles.sort());
    expect(new Set(patches.map((p) => p.id)).size).toBe(patches.length);
  });

  it.each(patchFiles)("%s declares id, description, why, removeWhen and targets, and default-exports definePatch", (file) => {
    const p = patches.find((x) => `${x.id}.ts` === file)!;
    expect(p.id).toMatch(/^[a-z]+(-[a-z]+)*$/);
    expect(p.description).not.toContain("\n");
    // removeWhen names what upstream must do for the patch to go; why and description are its own.
    expect(p.removeWhen).toMatch(/^upstream\b/i);
    expect(patches.filter((x) => x !== p && (x.description === p.description || x.why === p.why)).map((x) => x.id)).toEqual([]);
    expect(p.why.trim()).not.toBe(p.description.trim());
    expect(p.targets.length + (p.optionalTargets?.length ?? 0), "a patch edits at least one file (a target, or an optional target a later release added)").toBeGreaterThan(0);
    expect(readFileSync(path.join(dir, file), "utf8")).toMatch(/export default definePatch\(/);
  });

  it("needs names only patches registered earlier (each patch sees the output of the ones before it)", () => {
    const seen = new Set<string>();
    const declared: string[] = [];
    for (const p of patches) {
      for (const id of p.needs ?? []) {
        expect(seen.has(id), `${p.id} needs ${id}, which is not registered before it`).toBe(true);
        declared.push(`${p.id} <- ${id}`);
      }
      seen.add(p.id);
    }
    expect(declared).toEqual(expect.arrayContaining(["write-queue <- transcript-outside-lock", "parse-transcripts-off-loop <- write-queue"]));
  });
});
