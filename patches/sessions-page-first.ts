// GET /api/sessions (the Sessions page and the Dashboard, a page of 10 with its total) joined every session in
// its filter to its agents (LEFT JOIN … GROUP BY s.id), computed each one's agent count, last activity and
// prompt preview, sorted them all and kept 10. Rewritten, the query picks the page's ids first (sessions and
// their last activity only, same filter, same GROUP BY s.id and ORDER BY, so the same rows in the same order,
// ties included), then counts agents and builds the preview for those ids only (correlated subqueries).
// The parameters and their order are unchanged: the filter's and LIMIT/OFFSET move into the inner select.
import { SyntaxKind, type Node } from "ts-morph";
import { definePatch, marker, type TreeView, type VerifyFile } from "./define-patch.ts";
import { At, finding, PatchTargetError } from "./lib/errors.ts";
import { callAnchor, findOne } from "./lib/find.ts";
import { perParse } from "./lib/memo.ts";

const ID = "sessions-page-first";
const M = marker(ID);
const ROUTE = "server/routes/sessions.js";

/** A paged session list joined to its agents before its LIMIT: [1] the WHERE interpolation, [2] the ORDER BY. */
const JOINED_PAGE =
  /\s*LEFT\s+JOIN\s+agents\s+a\s+ON\s+a\.session_id\s*=\s*s\.id\s*(\$\{\s*\w+\s*\})\s*GROUP\s+BY\s+s\.id\s+ORDER\s+BY\s+([\s\S]+?)\s+LIMIT\s+\?\s+OFFSET\s+\?/i;
/** The gate's shape: any paged session list joined to its agents (whatever its WHERE) before its LIMIT. */
const JOINED_ANY = /LEFT\s+JOIN\s+agents\s+a\s+ON\s+a\.session_id\s*=\s*s\.id\b[\s\S]*?GROUP\s+BY\s+s\.id\s+ORDER\s+BY\s+[\s\S]+?\s+LIMIT\s+\?\s+OFFSET\s+\?/i;
const AGENT_COUNT = /COUNT\(\s*a\.id\s*\)(\s+as\s+agent_count)/i;
const LAST_ACTIVITY = /(\$\{\s*\w+\s*\})\s+as\s+last_activity/i;
const PAGE_FIRST = /FROM\s+sessions\s+s\s+WHERE\s+s\.id\s+IN\s+\(\s*SELECT\s+id\s+FROM\s+\(\s*SELECT\s+s\.id,/i;

const sqlTemplates = perParse((file: VerifyFile): Node[] =>
  [SyntaxKind.TemplateExpression, SyntaxKind.NoSubstitutionTemplateLiteral].flatMap((k) => file.ast.getDescendantsOfKind(k)));

/** `<line> …` for each paged session list (LIMIT ? OFFSET ?) that joins agents before its LIMIT. */
function joinedPages(file: VerifyFile): { line: number; message: string }[] {
  if (!/FROM\s+sessions\s+s\b/i.test(file.text)) return []; // no such list: no need to parse (the gate walks every file)
  return sqlTemplates(file)
    .filter((t) => /FROM\s+sessions\s+s\b/i.test(t.getText()) && JOINED_ANY.test(t.getText()))
    .map((t) => ({ line: t.getStartLineNumber(), message: "a paged session list joins every session in its filter to its agents and sorts them all before LIMIT ? OFFSET ?" }));
}

/** The query, page ids first: the inner select keeps upstream's filter, grouping and order; the outer reads the page. */
function pageFirst(sql: string): string | null {
  const join = JOINED_PAGE.exec(sql);
  const count = AGENT_COUNT.exec(sql);
  const activity = LAST_ACTIVITY.exec(sql);
  if (!join || !count || !activity) return null;
  const [, where, order] = join;
  const select = sql.slice(0, join.index).replace(AGENT_COUNT, (_m, alias: string) => `(SELECT COUNT(a.id) FROM agents a WHERE a.session_id = s.id)${alias}`);
  return (
    `${select}\n         WHERE s.id IN (SELECT id FROM (SELECT s.id, ${activity[1]} AS last_activity FROM sessions s ${where}` +
    ` GROUP BY s.id ORDER BY ${order} LIMIT ? OFFSET ?))\n         ORDER BY ${order}${sql.slice(join.index + join[0].length)}`
  );
}

export default definePatch({
  id: ID,
  description: "GET /api/sessions picks the page's session ids first (filter, order, LIMIT/OFFSET on sessions), then counts agents and builds previews for those ids only.",
  why:
    "The Sessions page and the Dashboard ask for a page of 10 sessions on each session_updated frame; upstream joined every session to its agents, " +
    "computed each one's count, last activity and prompt preview, and sorted them all to keep 10 (issue #13, ~1,000 sessions in a year's history).",
  removeWhen: "Upstream's session list selects its page before aggregating agents (or drops the LEFT JOIN … GROUP BY for a correlated count).",
  targets: [ROUTE],
  apply(file) {
    const route = findOne(ID, file, callAnchor("router.get", "/"));
    const pages = sqlTemplates(file).filter((t) => t.getFirstAncestor((a) => a === route) && JOINED_PAGE.test(t.getText()));
    if (pages.length !== 1) {
      // Nearest: the route's SQL that reads sessions, else its first template.
      const inRoute = sqlTemplates(file).filter((t) => t.getFirstAncestor((a) => a === route));
      const near = inRoute.find((t) => /FROM\s+sessions\b/i.test(t.getText())) ?? inRoute[0];
      throw new PatchTargetError(ID, file.path, "`SELECT s.*, COUNT(a.id) as agent_count, ${…} as last_activity … FROM sessions s LEFT JOIN agents a ON a.session_id = s.id ${where} GROUP BY s.id ORDER BY … LIMIT ? OFFSET ?` in router.get(\"/\")", pages.length,
        "The session list query changed shape.", near ? { line: near.getStartLineNumber(), text: near.getText().split("\n")[0] } : undefined);
    }
    const t = pages[0];
    const next = pageFirst(t.getText());
    if (!next) throw new PatchTargetError(ID, file.path, "a select list with COUNT(a.id) as agent_count and ${…} as last_activity", 0, "The session list's select list changed shape.", { line: t.getStartLineNumber(), text: t.getText().split("\n")[0] });
    file.edit.overwrite(t.getStart(), t.getEnd(), `${M} ${next}`);
  },
  verify(file) {
    const problems = joinedPages(file).map((p) => finding`${new At(p.line)} ${p.message}`);
    if (problems.length === 0 && !sqlTemplates(file).some((t) => PAGE_FIRST.test(t.getText()))) return ["no paged session list (page ids first) found"];
    return problems;
  },
  verifyTree(tree: TreeView) {
    const out: string[] = [];
    for (const f of tree.jsFiles) {
      if (!f.startsWith("server/routes/") || f.includes("__tests__") || tree.isAdded(f) || !/LEFT\s+JOIN\s+agents/i.test(tree.text(f))) continue;
      for (const p of joinedPages(tree.file(f))) out.push(`${f}:${p.line} ${p.message}`);
    }
    return out;
  },
  reportTree(tree: TreeView) {
    let n = 0;
    for (const f of tree.jsFiles) if (f.startsWith("server/routes/") && /FROM\s+sessions/i.test(tree.text(f))) n += sqlTemplates(tree.file(f)).filter((t) => PAGE_FIRST.test(t.getText())).length;
    return [`${n} paged session lists read their page first; none under server/routes joins agents before LIMIT ? OFFSET ?`];
  },
});
