// Comparing a page of a list answered by two trees (patched vs unpatched) on copies of one database: the same
// other fields, the same sort key at each position, each row the same bytes. Only rows whose sort key ties may
// trade places: SQL leaves the order of ties to the plan (upstream's own order among them changes with its plan).

export type Row = Record<string, unknown> & { id: string };

/** Where two answers differ beyond the order of tied rows: other fields, sort keys by position, rows by id, untied places. */
export function samePage(mine: Record<string, unknown>, theirs: Record<string, unknown>, list: string, key: (r: Row) => string): string[] {
  const out: string[] = [];
  const { [list]: rowsA, ...restA } = mine;
  const { [list]: rowsB, ...restB } = theirs;
  const [a, b] = [rowsA as Row[], rowsB as Row[]];
  if (JSON.stringify(restA) !== JSON.stringify(restB)) out.push(`fields ${JSON.stringify(restA)} vs ${JSON.stringify(restB)}`);
  if (JSON.stringify(a.map(key)) !== JSON.stringify(b.map(key))) return [...out, `sort keys ${JSON.stringify(a.map(key))} vs ${JSON.stringify(b.map(key))}`];
  const theirsById = new Map(b.map((r) => [r.id, JSON.stringify(r)]));
  const keys = a.map(key);
  a.forEach((r, i) => {
    if (theirsById.has(r.id) && theirsById.get(r.id) !== JSON.stringify(r)) out.push(`row ${r.id} differs`);
    // A row of a key no other row of the page has, and not at an edge (a tie may continue on the next page), must stay in place.
    const tied = keys.filter((k) => k === keys[i]).length > 1 || i === 0 || i === a.length - 1;
    if (r.id !== b[i].id && !tied) out.push(`position ${i}: ${r.id} vs ${b[i].id} (untied key ${keys[i]})`);
  });
  return out;
}
