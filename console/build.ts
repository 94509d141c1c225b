// Builds the operator console (console/src, Preact) into console/dist: one script,
// one stylesheet, one page; no CDN, so it works offline. Run by `npm run build` and
// before `npm start` (the prestart script); the tests call buildConsole() themselves.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const CONSOLE_SRC = fileURLToPath(new URL('./src/', import.meta.url));
export const CONSOLE_DIST = fileURLToPath(new URL('./dist/', import.meta.url));

export async function buildConsole(outdir = CONSOLE_DIST): Promise<void> {
  await mkdir(outdir, { recursive: true });
  await build({
    entryPoints: [CONSOLE_SRC + 'main.tsx', CONSOLE_SRC + 'style.css'],
    outdir,
    bundle: true,
    minify: true,
    sourcemap: false,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    logLevel: 'warning',
    // Names without hashes: the page is served with no-cache and revalidated.
    entryNames: '[name]',
  });
  await copyFile(CONSOLE_SRC + 'index.html', outdir + 'index.html');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildConsole();
