// Fixture pairs, found by reading the folder: test/fixtures/patches/<patch-id>/<case>.input.js
// (or .ts/.tsx for client patches) -> <case>.output.js (applies, then re-applies as a no-op) or <case>.error.txt (must fail with
// each line of that file in the message). The first line `// target: <path>` names the target
// file when the patch has several. Orphan or unregistered fixtures fail the suite.
// A derived input (an earlier patch's output or input, or a fixture monitor file, but for
// deliberate edits) is declared in <case>.derived.json (test/support/fixtures.ts) and must equal
// what it derives.
// UPDATE_FIXTURES=1 rewrites derived inputs, outputs and error files from the patches, in patch
// order (an earlier output first, then the inputs derived from it), so a bump shows in the diff.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { applyPatchToText } from "../../scripts/pipeline/patch.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { DERIVED_SUFFIX, derivationSource, deriveInput, MONITOR_PREFIX, readDerivation } from "../support/fixtures.ts";

const root = path.join(repoRoot, "test", "fixtures", "patches");
const byId = new Map(patches.map((p) => [p.id, p]));
const order = new Map(patches.map((p, i) => [p.id, i]));
const update = process.env.UPDATE_FIXTURES === "1";
// Patch order, so that in update mode an earlier patch's outputs are written before later inputs derive from them.
const folders = (existsSync(root) ? readdirSync(root).filter((d) => !d.startsWith(".")) : []).sort(
  (a, b) => (order.get(a) ?? Infinity) - (order.get(b) ?? Infinity) || a.localeCompare(b),
);

/** Every derived case under `fixtures` whose checked-in input is not what its declaration derives. */
function staleDerivedInputs(fixtures: string): string[] {
  const stale: string[] = [];
  for (const id of readdirSync(fixtures)) {
    for (const f of readdirSync(path.join(fixtures, id)).filter((n) => n.endsWith(DERIVED_SUFFIX))) {
      const input = path.join(fixtures, id, f.slice(0, -DERIVED_SUFFIX.length) + ".input.js");
      if (deriveInput(fixtures, path.join(fixtures, id, f)) !== readFileSync(input, "utf8")) stale.push(`${id}/${f}`);
    }
  }
  return stale;
}

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

  it("a derived input names an existing fixture monitor file or an earlier patch's fixture", () => {
    const wrong: string[] = [];
    for (const id of folders) {
      for (const f of readdirSync(path.join(root, id)).filter((n) => n.endsWith(DERIVED_SUFFIX))) {
        const from = readDerivation(path.join(root, id, f)).from;
        const earlier = from.startsWith(MONITOR_PREFIX) || (order.get(from.split("/")[0]) ?? Infinity) < order.get(id)!;
        if (!existsSync(derivationSource(root, from)) || !earlier) wrong.push(`${id}/${f}: ${from}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it.skipIf(update)("a derived input drifts from the fixture it copies: the check names it", () => {
    // A copy of the fixtures (patch fixtures and fixture monitor) where a source changes and the inputs derived from it do not.
    const copy = mkdtempSync(path.join(os.tmpdir(), "fixtures-chain-"));
    const fixtures = path.join(copy, "patches");
    const change = (file: string, from: string, to: string) => writeFileSync(file, readFileSync(file, "utf8").replace(from, to));
    try {
      cpSync(path.dirname(root), copy, { recursive: true });
      expect(staleDerivedInputs(fixtures)).toEqual([]);
      // An earlier patch's output (the chain) and an earlier patch's input.
      change(path.join(fixtures, "write-queue", "hooks.output.js"), "const router = Router();", "const router = Router(); // changed");
      change(path.join(fixtures, "write-queue", "hooks.input.js"), "const router = Router();", "const router = Router(); // changed");
      expect(staleDerivedInputs(fixtures)).toEqual(
        expect.arrayContaining(["parse-transcripts-off-loop/basic.derived.json", "validate-hook-input/basic.derived.json", "validate-hook-input/named-handler.derived.json", "spool-hook-events/hooks-no-queue.derived.json"]),
      );
      // A fixture monitor file.
      expect(staleDerivedInputs(fixtures)).not.toContain("list-events-by-recency/events-with-facets.derived.json");
      change(path.join(copy, "upstream", "server", "routes", "events.js"), "const { Router } = require(\"express\");", "const { Router } = require(\"express\"); // changed");
      expect(staleDerivedInputs(fixtures)).toContain("list-events-by-recency/events-with-facets.derived.json");
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
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
      const known = new Set(cases.flatMap((c) => [`${c}.input.${extOf.get(c)}`, `${c}.output.${extOf.get(c)}`, `${c}.error.txt`, `${c}${DERIVED_SUFFIX}`]));
      expect(files.filter((f) => !known.has(f))).toEqual([]);
      expect(cases.some((c) => files.includes(`${c}.output.${extOf.get(c)}`))).toBe(true);
      expect(cases.some((c) => files.includes(`${c}.error.txt`))).toBe(true);
      for (const c of cases) expect(files.includes(`${c}.output.${extOf.get(c)}`) || files.includes(`${c}.error.txt`), `${c} has no expectation`).toBe(true);
    });

    for (const c of cases) {
      const inputFile = path.join(dir, `${c}.input.${extOf.get(c)}`);
      const outputFile = path.join(dir, `${c}.output.${extOf.get(c)}`);
      const errorFile = path.join(dir, `${c}.error.txt`);
      const derivedFile = path.join(dir, `${c}${DERIVED_SUFFIX}`);
      // Read when the test runs: in update mode an earlier folder's test may just have rewritten it.
      const input = () => readFileSync(inputFile, "utf8");
      if (existsSync(derivedFile)) {
        it(`${c}: the input is ${readDerivation(derivedFile).from} with its declared edits`, () => {
          const derived = deriveInput(root, derivedFile);
          if (update) writeFileSync(inputFile, derived);
          expect(input(), "stale chained input: run UPDATE_FIXTURES=1 npx vitest run test/unit/patch-fixtures.test.ts and review the diff").toBe(derived);
        });
      }
      if (existsSync(outputFile)) {
        it(`${c}: applies to the expected output, and re-applying is a no-op`, () => {
          const patch = byId.get(id)!;
          const target = targetOf(id, input());
          const first = applyPatchToText(patch, target, input());
          if (update) writeFileSync(outputFile, first.text);
          expect(first.text).toBe(readFileSync(outputFile, "utf8"));
          if (first.text !== input()) expect(first.action).toBe("applied");
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
            applyPatchToText(patch, targetOf(id, input()), input());
          } catch (err) {
            message = (err as Error).message;
          }
          expect(message, "the patch applied although the input drifted").not.toBe("");
          // Rewritten only when it no longer matches, so hand-picked lines survive an update.
          if (update && (expected.length === 0 || !expected.every((line) => message.includes(line)))) writeFileSync(errorFile, message + "\n");
          else expect(expected.length, `${c}.error.txt is empty: it would accept any failure`).toBeGreaterThan(0);
          for (const line of expected) expect(message).toContain(line);
        });
      }
    }
  });
}
