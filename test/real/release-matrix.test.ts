// Every release tag builds with all gates passing, or fails exactly as patches/release-support.json declares.
import { describe, expect, it } from "vitest";
import { declaredUnsupported, type MatrixRow, runMatrix } from "../../scripts/release-matrix.ts";
import { realUpstream, SKIP_REAL } from "../support/build-once.ts";

describe.skipIf(!realUpstream)("release matrix (real upstream)", () => {
  let rows: MatrixRow[] = [];
  it("builds every tag", async () => {
    rows = await runMatrix(realUpstream!);
    expect(rows.length).toBeGreaterThanOrEqual(12);
  }, 600_000);

  it("each tag passes every gate or fails with its declared reason", () => {
    const declared = declaredUnsupported();
    for (const r of rows) {
      const d = declared[r.tag];
      if (d) {
        expect(r.ok, `${r.tag} is declared unsupported (${d.reason}) but built`).toBe(false);
        expect(r.problems.join("\n")).toContain(d.expect);
      } else {
        expect(r.problems, `${r.tag} should build`).toEqual([]);
      }
    }
  });
});

if (!realUpstream) describe("release matrix (real upstream)", () => it.skip(SKIP_REAL, () => {}));
