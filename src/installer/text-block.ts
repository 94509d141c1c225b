// Marked blocks in files the installer shares with the admin (custom_transport.pcre,
// local.d/rspamd.lua, override.d/actions.conf). Install replaces the block in place or
// appends it; uninstall cuts exactly those lines out again.
import { BLOCK_ID } from './layout.js';
import { InstallError } from './install-error.js';

export interface BlockStyle {
  /** Line comment of the file's language: `#` (pcre, UCL) or `--` (Lua). */
  readonly comment: string;
}

const begin = (s: BlockStyle): string =>
  `${s.comment} >>> ${BLOCK_ID} BEGIN (managed by \`admp install\`; \`admp uninstall\` removes it)`;
const end = (s: BlockStyle): string => `${s.comment} <<< ${BLOCK_ID} END`;

interface Span {
  start: number;
  end: number;
}

/** Byte range of the block including its END line's newline, or null; refuses half blocks. */
function findBlock(text: string, style: BlockStyle, file: string): Span | null {
  const lines = text.split('\n');
  let offset = 0;
  let start = -1;
  let found: Span | null = null;
  for (const line of lines) {
    const next = offset + line.length + 1;
    if (line.startsWith(`${style.comment} >>> ${BLOCK_ID} BEGIN`)) {
      if (start >= 0 || found)
        throw new InstallError(`more than one "${BLOCK_ID}" block; remove the extra one by hand`, file);
      start = offset;
    } else if (line === end(style)) {
      if (start < 0) throw new InstallError(`"${BLOCK_ID} END" marker without BEGIN; fix the file by hand`, file);
      found = { start, end: Math.min(next, text.length) };
      start = -1;
    }
    offset = next;
  }
  if (start >= 0) throw new InstallError(`"${BLOCK_ID} BEGIN" marker without END; fix the file by hand`, file);
  return found;
}

export function renderBlock(body: string, style: BlockStyle): string {
  const inner = body.endsWith('\n') ? body : `${body}\n`;
  return `${begin(style)}\n${inner}${end(style)}\n`;
}

export interface Upserted {
  readonly text: string;
  /** True when a newline had to be added after the admin's unterminated last line. */
  readonly addedNewline: boolean;
}

/** Checks that `block` is exactly one marked block (a shipped template, or renderBlock's output). */
export function assertBlock(block: string, style: BlockStyle, source: string): void {
  const span = findBlock(block, style, source);
  if (!span || span.start !== 0 || span.end !== block.length)
    throw new InstallError(`expected exactly one "${BLOCK_ID}" block and nothing else`, source);
}

/** The file with the marked `block` in it (replacing ours in place, else appended). */
export function upsertBlock(text: string, block: string, style: BlockStyle, file: string): Upserted {
  const span = findBlock(text, style, file);
  if (span) return { text: text.slice(0, span.start) + block + text.slice(span.end), addedNewline: false };
  const addedNewline = text.length > 0 && !text.endsWith('\n');
  return { text: `${text}${addedNewline ? '\n' : ''}${block}`, addedNewline };
}

/** The file without the block; `addedNewline` undoes the separator upsertBlock added. */
export function removeBlock(text: string, style: BlockStyle, file: string, addedNewline = false): string {
  const span = findBlock(text, style, file);
  if (!span) return text;
  const atEnd = span.end === text.length;
  const start = addedNewline && atEnd && span.start > 0 && text[span.start - 1] === '\n' ? span.start - 1 : span.start;
  return text.slice(0, start) + text.slice(span.end);
}
