// Validates an OpenAPI document (a file path, or - for stdin) with @seriousme/openapi-schema-validator.
// Prints the errors and exits 1 when it is not a valid OpenAPI 3.x document.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";

const src = process.argv[2] === "-" || !process.argv[2] ? 0 : process.argv[2];
const doc = JSON.parse(readFileSync(src, "utf8"));
const v = new Validator();
const res = await v.validate(doc);
if (!res.valid) {
  console.log(JSON.stringify(res.errors, null, 2));
  process.exit(1);
}
console.log(`valid OpenAPI ${v.version}`);
