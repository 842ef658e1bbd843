// Copies the non-TypeScript files the compiled code loads at run time into dist/: the .proto schema
// and the clinic screen's page (HTML, hand-written ES modules, CSS, icon).
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const assets = [
  ['device-sdk/proto', ['.proto']],
  ['firmware/ui/static', ['.html', '.js', '.css', '.svg']],
];
for (const [dir, exts] of assets) {
  mkdirSync(join(root, 'dist', dir), { recursive: true });
  for (const name of readdirSync(join(root, dir)).filter((n) => exts.some((ext) => n.endsWith(ext)))) {
    cpSync(join(root, dir, name), join(root, 'dist', dir, name));
  }
}
