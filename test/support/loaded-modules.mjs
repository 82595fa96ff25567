// Preload for a CLI run (`node --import <this>`): at exit, prints every CommonJS module the
// process loaded whose path names typescript or ts-morph, one per line on stderr, prefixed
// "loaded-module: ". ts-morph and typescript are CommonJS, so Module._cache sees them even when
// an ES module imported them.
import Module from "node:module";

process.on("exit", () => {
  for (const file of Object.keys(Module._cache)) {
    if (/[\\/]node_modules[\\/](typescript|ts-morph|@ts-morph)[\\/]/.test(file)) process.stderr.write(`loaded-module: ${file}\n`); // ts-morph bundles the compiler as @ts-morph/common/dist/typescript.js
  }
});
