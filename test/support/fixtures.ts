// Chained fixtures: a later patch's input that is an earlier patch's output but for a few
// deliberate differences says so in `<case>.derived.json` next to it:
//   { "from": "<patch>/<case>.output.js", "edits": [{ "replace": "<text>", "with": "<text>" }] }
// Each `replace` must occur exactly once in the text so far. The `.input.js` stays checked in (to
// read, and for the tools that list inputs); patch-fixtures.test.ts fails when it is not what the
// declaration derives, and UPDATE_FIXTURES=1 rewrites it.
import { readFileSync } from "node:fs";
import path from "node:path";

export interface Derivation {
  from: string;
  edits?: { replace: string; with: string }[];
}

export const DERIVED_SUFFIX = ".derived.json";

export function readDerivation(file: string): Derivation {
  const spec = JSON.parse(readFileSync(file, "utf8")) as Derivation;
  if (typeof spec.from !== "string" || !spec.from.endsWith(".output.js")) {
    throw new Error(`${file}: "from" must name an earlier patch's <patch>/<case>.output.js`);
  }
  return spec;
}

/** The input a declaration derives from the fixtures under `root` (throws naming an edit that no longer matches). */
export function deriveInput(root: string, specFile: string): string {
  const spec = readDerivation(specFile);
  let text = readFileSync(path.join(root, spec.from), "utf8");
  for (const [i, edit] of (spec.edits ?? []).entries()) {
    const at = text.indexOf(edit.replace);
    if (at < 0 || text.indexOf(edit.replace, at + 1) >= 0) {
      throw new Error(
        `${path.relative(root, specFile)}: edit ${i + 1} must match exactly once in ${spec.from} (found ${at < 0 ? 0 : "several"}): ${JSON.stringify(edit.replace.slice(0, 80))}`,
      );
    }
    text = text.slice(0, at) + edit.with + text.slice(at + edit.replace.length);
  }
  return text;
}
