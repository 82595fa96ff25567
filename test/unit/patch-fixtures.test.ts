// Fixture pairs, found by reading the folder: test/fixtures/patches/<patch-id>/<case>.input.js
// (or .ts/.tsx for client patches) -> <case>.output.js (applies, then re-applies as a no-op) or <case>.error.txt (must fail with
// each line of that file in the message). The first line `// target: <path>` names the target
// file when the patch has several. Orphan or unregistered fixtures fail the suite.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { applyPatchToText } from "../../scripts/pipeline/patch.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";

const root = path.join(repoRoot, "test", "fixtures", "patches");
const byId = new Map(patches.map((p) => [p.id, p]));
const folders = existsSync(root) ? readdirSync(root).filter((d) => !d.startsWith(".")) : [];

function targetOf(patchId: string, text: string): string {
  const m = /^\/\/ target: (\S+)/.exec(text);
  const patch = byId.get(patchId)!;
  if (m) return m[1];
  if (patch.targets.length === 1) return patch.targets[0];
  throw new Error(`fixture for ${patchId} needs a first line "// target: <path>" (the patch has ${patch.targets.length} targets)`);
}

describe("patch fixture folders", () => {
  it("every folder is a registered patch, and every patch has a folder", () => {
    expect(folders.filter((d) => !byId.has(d))).toEqual([]);
    expect(patches.map((p) => p.id).filter((id) => !folders.includes(id))).toEqual([]);
  });
});

for (const id of folders) {
  const dir = path.join(root, id);
  const files = readdirSync(dir);
  // Client patches' fixtures are .ts/.tsx: the engine parses by extension.
  const extOf = new Map(files.flatMap((f) => { const m = /^(.*)\.input\.(js|ts|tsx)$/.exec(f); return m ? [[m[1], m[2]] as const] : []; }));
  const cases = [...extOf.keys()];

  describe(`fixtures: ${id}`, () => {
    it("has at least one applying case and one drifted case, and no orphan files", () => {
      const known = new Set(cases.flatMap((c) => [`${c}.input.${extOf.get(c)}`, `${c}.output.${extOf.get(c)}`, `${c}.error.txt`]));
      expect(files.filter((f) => !known.has(f))).toEqual([]);
      expect(cases.some((c) => files.includes(`${c}.output.${extOf.get(c)}`))).toBe(true);
      expect(cases.some((c) => files.includes(`${c}.error.txt`))).toBe(true);
      for (const c of cases) expect(files.includes(`${c}.output.${extOf.get(c)}`) || files.includes(`${c}.error.txt`), `${c} has no expectation`).toBe(true);
    });

    for (const c of cases) {
      const input = readFileSync(path.join(dir, `${c}.input.${extOf.get(c)}`), "utf8");
      const outputFile = path.join(dir, `${c}.output.${extOf.get(c)}`);
      const errorFile = path.join(dir, `${c}.error.txt`);
      if (existsSync(outputFile)) {
        it(`${c}: applies to the expected output, and re-applying is a no-op`, () => {
          const patch = byId.get(id)!;
          const target = targetOf(id, input);
          const first = applyPatchToText(patch, target, input);
          expect(first.text).toBe(readFileSync(outputFile, "utf8"));
          if (first.text !== input) expect(first.action).toBe("applied");
          const second = applyPatchToText(patch, target, first.text);
          expect(second.action).toBe("already-applied");
          expect(second.text).toBe(first.text);
        });
      }
      if (existsSync(errorFile)) {
        it(`${c}: fails loudly with the expected message`, () => {
          const patch = byId.get(id)!;
          const expected = readFileSync(errorFile, "utf8").split("\n").filter((l) => l.trim());
          let message = "";
          try {
            applyPatchToText(patch, targetOf(id, input), input);
          } catch (err) {
            message = (err as Error).message;
          }
          expect(message, "the patch applied although the input drifted").not.toBe("");
          for (const line of expected) expect(message).toContain(line);
        });
      }
    }
  });
}
