// After a build: dist/build.json records when and from what the build was made (the gateway's
// "not built" page and `make` compare the sources' times with the build's).
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
writeFileSync(
  join(root, "dist", "build.json"),
  JSON.stringify({ builtAt: new Date().toISOString(), node: process.version }) + "\n",
);
