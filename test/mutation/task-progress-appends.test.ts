// Mutation test of task-progress-appends' whole-tree gate: upstream adds a second module that turns a
// transcript's lines into task progress itself (read whole, each line JSON.parse'd into
// observationsFromEntry). The patch still applies to task-progress.js; the gate names the new parser.
import { describe, expect, it } from "vitest";
import { buildMutant, mutateFixture, targetsOnly } from "../support/mutation.ts";

const CODEX_PROGRESS =
  'const fs = require("fs");\n' +
  'const { observationsFromEntry } = require("./task-observations");\n\n' +
  "function readCodexProgress(filePath, owner) {\n" +
  '  const lines = fs.readFileSync(filePath, "utf8").split("\\n").filter(Boolean);\n' +
  "  return lines.flatMap((line, i) => observationsFromEntry(JSON.parse(line), i + 1, owner));\n" +
  "}\n\n" +
  "module.exports = { readCodexProgress };\n";

describe("task-progress-appends mutation: a second transcript parser of task progress", () => {
  it("fails the gate naming the patch and the parser, file:line (targets alone would have shipped it)", async () => {
    const dir = mutateFixture("codex-progress", { "server/lib/codex-progress.js": CODEX_PROGRESS });
    expect((await buildMutant(dir, { patches: targetsOnly })).problems).toBeNull();
    const built = await buildMutant(dir);
    expect(built.problems).toMatch(
      /^\[task-progress-appends\] whole tree: server\/lib\/codex-progress\.js:4 readCodexProgress\(\) parses transcript lines into task progress without taskProgressAppends: a growing transcript is parsed whole on every reload$/m,
    );
  });
});
