#!/usr/bin/env node
// The `medge` command. Runs the compiled CLI (npm ci builds it through the `prepare` script).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'firmware', 'cli', 'main.js');
if (!existsSync(main)) {
  process.stderr.write(`medge: ${main} is missing. Build it first: npm run build\n`);
  process.exit(1);
}
await import(pathToFileURL(main).href);
