// Source maps: each applied patch's map (its output -> its input), composed per file into the
// `<file>.map` written beside it (output -> upstream), and walked back to name upstream's line or
// offset for something found in an intermediate text.
import { createRequire } from "node:module";
import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";
import type { SourceMap } from "magic-string";

const remapping = createRequire(import.meta.url)("@ampproject/remapping") as typeof import("@ampproject/remapping").default;

/** The maps of one file's edits, in order (first patch first), composed: output -> upstream, as JSON. */
export function composeMaps(chain: SourceMap[], file: string): string {
  const composed = remapping(chain.slice().reverse().map((m) => m.toString()), () => null);
  composed.file = file;
  return JSON.stringify(composed);
}

/** A line of the patched text -> upstream's line (null: an earlier patch wrote it); undefined when no edit came before. */
export function upstreamLineOf(earlier: SourceMap[]): ((line: number) => number | null) | undefined {
  if (earlier.length === 0) return undefined;
  const trace = new TraceMap(composeMaps(earlier, ""));
  return (line) => originalPositionFor(trace, { line, column: 0 }).line;
}

export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

/**
 * Offsets back through maps. Each map's trace and line starts are computed once (a map belongs to
 * one run of the engine; they go with it).
 */
export class MapTracer {
  private readonly traces = new WeakMap<SourceMap, { trace: TraceMap; starts: number[] }>();
  /** Line starts of the text each map was generated for (its output side). */
  private readonly outputStarts = new WeakMap<SourceMap, number[]>();

  /** Composed chains by their last map (maps come from the engine's apply memo: an unchanged file brings the same chain). */
  private readonly composed = new WeakMap<SourceMap, { chain: SourceMap[]; file: string; json: string }>();

  /** composeMaps, once per chain of map objects. */
  compose(chain: SourceMap[], file: string): string {
    const last = chain[chain.length - 1];
    const hit = this.composed.get(last);
    if (hit && hit.file === file && hit.chain.length === chain.length && hit.chain.every((m, i) => m === chain[i])) return hit.json;
    const json = composeMaps(chain, file);
    this.composed.set(last, { chain, file, json });
    return json;
  }

  /** Record the text `map` was generated for (needed to walk offsets back through it). */
  output(map: SourceMap, text: string): void {
    this.outputStarts.set(map, lineStarts(text));
  }

  /**
   * Offsets in the text a patch received -> offsets in upstream's file, back through each earlier
   * patch's map, so the fingerprint is of upstream's code, not of our earlier edits. Anchors
   * inside code an earlier patch wrote have no upstream position and are dropped.
   */
  toUpstream(offsets: number[], earlier: SourceMap[] | undefined): number[] {
    let out = offsets;
    for (const map of (earlier ?? []).slice().reverse()) {
      let t = this.traces.get(map);
      if (!t) {
        t = { trace: new TraceMap(map.toString()), starts: lineStarts(map.sourcesContent?.[0] ?? "") };
        this.traces.set(map, t);
      }
      const { trace, starts } = t;
      const outStarts = this.outputStarts.get(map)!;
      out = out.flatMap((off) => {
        let lo = 0;
        let hi = outStarts.length - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if (outStarts[mid] <= off) lo = mid;
          else hi = mid - 1;
        }
        const pos = originalPositionFor(trace, { line: lo + 1, column: off - outStarts[lo] });
        return pos.line === null || pos.column === null ? [] : [(starts[pos.line - 1] ?? 0) + pos.column];
      });
    }
    return out;
  }
}
