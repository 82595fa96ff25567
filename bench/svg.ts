// Hand-written SVG chart: one row per mode, two panels per row — latency p50/p99 against N
// (log scale) and throughput against N (linear) — one colour per tree.

export interface SeriesPoint {
  n: number;
  value: number;
}

export interface ChartSeries {
  tree: string;
  color: string;
  p50: SeriesPoint[];
  p99: SeriesPoint[];
  throughput: SeriesPoint[];
}

export interface ChartRow {
  mode: string;
  series: ChartSeries[];
}

const PANEL_W = 440;
const PANEL_H = 240;
const M = { left: 62, right: 16, top: 34, bottom: 42 };
const ROW_H = PANEL_H + 20;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (v: number) =>
  v === 0 ? "0" : v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(1) : v.toFixed(2);

interface Panel {
  x0: number;
  y0: number;
  title: string;
  ns: number[];
  log: boolean;
  yLabel: string;
  lines: Array<{ color: string; dash: boolean; points: SeriesPoint[]; label: string }>;
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panel(p: Panel): string {
  const w = PANEL_W - M.left - M.right;
  const h = PANEL_H - M.top - M.bottom;
  const pad = 24; // keep the first/last N off the frame
  const x = (n: number) => {
    const i = p.ns.indexOf(n);
    return p.x0 + M.left + pad + (p.ns.length === 1 ? (w - 2 * pad) / 2 : (i / (p.ns.length - 1)) * (w - 2 * pad));
  };
  const values = p.lines.flatMap((l) => l.points.map((pt) => pt.value)).filter((v) => Number.isFinite(v) && v > 0);
  let y: (v: number) => number;
  const ticks: number[] = [];
  if (p.log) {
    const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values, 1))));
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values, 10))));
    const span = Math.log10(hi) - Math.log10(lo) || 1;
    y = (v) => p.y0 + M.top + h - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / span) * h;
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  } else {
    const hi = niceMax(Math.max(...values, 1));
    y = (v) => p.y0 + M.top + h - (Math.max(0, v) / hi) * h;
    for (let i = 0; i <= 4; i++) ticks.push((hi * i) / 4);
  }
  const parts: string[] = [];
  parts.push(`<text x="${p.x0 + M.left}" y="${p.y0 + 20}" class="title">${esc(p.title)}</text>`);
  for (const t of ticks) {
    const ty = y(t);
    parts.push(`<line x1="${p.x0 + M.left}" x2="${p.x0 + M.left + w}" y1="${ty}" y2="${ty}" class="grid"/>`);
    parts.push(`<text x="${p.x0 + M.left - 6}" y="${ty + 4}" class="tick" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const n of p.ns) {
    parts.push(`<text x="${x(n)}" y="${p.y0 + M.top + h + 16}" class="tick" text-anchor="middle">${n}</text>`);
  }
  parts.push(`<text x="${p.x0 + M.left + w / 2}" y="${p.y0 + PANEL_H - 8}" class="axis" text-anchor="middle">agents (N)</text>`);
  parts.push(
    `<text transform="translate(${p.x0 + 14},${p.y0 + M.top + h / 2}) rotate(-90)" class="axis" text-anchor="middle">${esc(p.yLabel)}</text>`,
  );
  parts.push(`<rect x="${p.x0 + M.left}" y="${p.y0 + M.top}" width="${w}" height="${h}" class="frame"/>`);
  for (const line of p.lines) {
    const pts = line.points.filter((pt) => Number.isFinite(pt.value) && p.ns.includes(pt.n));
    if (pts.length === 0) continue;
    const d = pts.map((pt, i) => `${i ? "L" : "M"}${x(pt.n).toFixed(1)},${y(pt.value).toFixed(1)}`).join(" ");
    parts.push(`<path d="${d}" fill="none" stroke="${line.color}" stroke-width="2"${line.dash ? ' stroke-dasharray="5 4"' : ""}/>`);
    for (const pt of pts) {
      parts.push(
        `<circle cx="${x(pt.n).toFixed(1)}" cy="${y(pt.value).toFixed(1)}" r="3" fill="${line.color}"><title>${esc(line.label)} N=${pt.n}: ${fmt(pt.value)}</title></circle>`,
      );
    }
  }
  return parts.join("\n");
}

export function renderChart(rows: ChartRow[], ns: number[], subtitle: string): string {
  const width = PANEL_W * 2 + 10;
  const legendH = 44;
  const height = legendH + rows.length * ROW_H + 10;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
  );
  out.push(
    `<style>.title{font-size:13px;font-weight:bold;fill:#222}.tick{font-size:10px;fill:#555}.axis{font-size:11px;fill:#333}.grid{stroke:#e4e4e4;stroke-width:1}.frame{fill:none;stroke:#999;stroke-width:1}.legend{font-size:11px;fill:#222}</style>`,
  );
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="10" y="18" class="title">${esc(subtitle)}</text>`);
  let lx = 10;
  const trees = rows[0]?.series ?? [];
  for (const s of trees) {
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="34" y2="34" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 30}" y="38" class="legend">${esc(s.tree)} (solid: p99 / throughput)</text>`);
    lx += 250;
  }
  out.push(`<line x1="${lx}" x2="${lx + 24}" y1="34" y2="34" stroke="#555" stroke-width="2" stroke-dasharray="5 4"/>`);
  out.push(`<text x="${lx + 30}" y="38" class="legend">dashed: p50</text>`);
  rows.forEach((row, i) => {
    const y0 = legendH + i * ROW_H;
    out.push(
      panel({
        x0: 0,
        y0,
        title: `${row.mode}: hook latency (ms, log scale)`,
        ns,
        log: true,
        yLabel: "ms",
        lines: row.series.flatMap((s) => [
          { color: s.color, dash: false, points: s.p99, label: `${s.tree} p99` },
          { color: s.color, dash: true, points: s.p50, label: `${s.tree} p50` },
        ]),
      }),
    );
    out.push(
      panel({
        x0: PANEL_W + 10,
        y0,
        title: `${row.mode}: throughput, events/s (${row.mode === "fire-and-forget" ? "stored" : "answered 200"})`,
        ns,
        log: false,
        yLabel: "events/s",
        lines: row.series.map((s) => ({ color: s.color, dash: false, points: s.throughput, label: `${s.tree} events/s` })),
      }),
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
