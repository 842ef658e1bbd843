// Copies the non-TypeScript files the compiled code loads at run time (the .proto schema) into dist/.
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const assets = [['device-sdk/proto', '.proto']];
for (const [dir, ext] of assets) {
  mkdirSync(join(root, 'dist', dir), { recursive: true });
  for (const name of readdirSync(join(root, dir)).filter((n) => n.endsWith(ext))) {
    cpSync(join(root, dir, name), join(root, 'dist', dir, name));
  }
}
