// Derived fixtures: an input that is a copy of another fixture but for a few deliberate
// differences says so in `<case>.derived.json` next to it:
//   { "from": "<source>", "edits": [{ "replace": "<text>", "with": "<text>" }] }
// where <source> is an earlier patch's fixture, `<patch>/<case>.output.js` (the chain: the text
// after that patch) or `<patch>/<case>.input.js` (the text before it), or a file of the fixture
// monitor, `upstream:<path>` (test/fixtures/upstream/<path>). Each `replace` must occur exactly
// once in the text so far. The `.input.js` stays checked in (to read, and for the tools that list
// inputs); patch-fixtures.test.ts fails when it is not what the declaration derives, and
// UPDATE_FIXTURES=1 rewrites it.
import { readFileSync } from "node:fs";
import path from "node:path";

export interface Derivation {
  from: string;
  edits?: { replace: string; with: string }[];
}

export const DERIVED_SUFFIX = ".derived.json";
/** `from` naming a file of the fixture monitor (test/fixtures/upstream/), not a patch fixture. */
export const MONITOR_PREFIX = "upstream:";

export function readDerivation(file: string): Derivation {
  const spec = JSON.parse(readFileSync(file, "utf8")) as Derivation;
  if (typeof spec.from !== "string" || !(spec.from.startsWith(MONITOR_PREFIX) || /^[^/]+\/[^/]+\.(input|output)\.js$/.test(spec.from))) {
    throw new Error(`${file}: "from" must name an earlier patch's <patch>/<case>.output.js or .input.js, or a fixture monitor file as ${MONITOR_PREFIX}<path>`);
  }
  return spec;
}

/**
 * The file `from` names, for the patch fixtures under `root` (test/fixtures/patches, or a copy of
 * test/fixtures/ with the same layout): the fixture monitor is its sibling `upstream/`.
 */
export function derivationSource(root: string, from: string): string {
  return from.startsWith(MONITOR_PREFIX) ? path.join(root, "..", "upstream", from.slice(MONITOR_PREFIX.length)) : path.join(root, from);
}

/** The input a declaration derives from the fixtures under `root` (throws naming an edit that no longer matches). */
export function deriveInput(root: string, specFile: string): string {
  const spec = readDerivation(specFile);
  let text = readFileSync(derivationSource(root, spec.from), "utf8");
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
