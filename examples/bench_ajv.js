// Optional reference for `scripts/bench`: ajv 8 (Node) parsing every NDJSON line with
// JSON.parse and validating it against every schema version of its collection, one thread.
//
//   NODE_PATH=DIR/node_modules node examples/bench_ajv.js [--repeat N] --schemas DIR FILE...
//
// Needs the npm packages ajv@8 and ajv-formats@3 (scripts/bench installs them into
// target/bench-ajv when npm is present). The collection is the file's name without extension;
// its schemas are DIR/<collection>/v*.schema.json (draft 2020-12, formats validated, as the
// check does). The files are read and split into lines before the clock starts. Prints the
// same line as bench_parse: `mode=ajv threads=1 docs=… errors=… bytes=… seconds=…
// docs_per_sec=… mib_per_sec=… versions_valid=…`.
"use strict";
const fs = require("fs");
const path = require("path");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

let repeat = 1;
let schemas = null;
const files = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--repeat") repeat = Math.max(1, parseInt(argv[++i], 10));
  else if (argv[i] === "--schemas") schemas = argv[++i];
  else files.push(argv[i]);
}
if (!schemas || files.length === 0) {
  console.error("usage: bench_ajv.js [--repeat N] --schemas DIR FILE...");
  process.exit(2);
}

const ajv = new Ajv2020({ strict: false, allErrors: false });
addFormats(ajv);
let bytes = 0;
const work = files.map((f) => {
  const coll = path.basename(f).replace(/\.[^.]*$/, "");
  const dir = path.join(schemas, coll);
  const validators = fs
    .readdirSync(dir)
    .filter((n) => /^v\d+\.schema\.json$/.test(n))
    .sort()
    .map((n) => {
      const s = JSON.parse(fs.readFileSync(path.join(dir, n), "utf8"));
      delete s.$id;
      return ajv.compile(s);
    });
  if (validators.length === 0) throw new Error(`${dir}: no v*.schema.json`);
  const text = fs.readFileSync(f, "utf8");
  bytes += Buffer.byteLength(text);
  return { validators, lines: text.split("\n").filter((l) => l.trim() !== "") };
});

let best = Infinity;
let docs = 0;
let errors = 0;
let valid = 0;
for (let r = 0; r < repeat; r++) {
  const start = process.hrtime.bigint();
  let d = 0;
  let e = 0;
  let v = 0;
  for (const w of work) {
    for (const line of w.lines) {
      let doc;
      try {
        doc = JSON.parse(line);
      } catch (_) {
        e++;
        continue;
      }
      d++;
      for (const validate of w.validators) if (validate(doc)) v++;
    }
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  if (secs < best) best = secs;
  docs = d;
  errors = e;
  valid = v;
}
console.log(
  `mode=ajv threads=1 docs=${docs} errors=${errors} bytes=${bytes} seconds=${best.toFixed(6)} ` +
    `docs_per_sec=${Math.round(docs / best)} mib_per_sec=${(bytes / best / 1048576).toFixed(2)} ` +
    `versions_valid=${valid}`
);
