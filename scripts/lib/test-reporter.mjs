// A node:test reporter that prints one JSON line per finished test: {file, line, name, status}.
export default async function* jsonLines(source) {
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const d = event.data;
    if (d.details?.type === "suite") continue;
    const status = event.type === "test:pass" ? (d.skip || d.todo ? "skipped" : "passed") : "failed";
    yield JSON.stringify({ file: d.file, line: d.line, name: d.name, status }) + "\n";
  }
}
