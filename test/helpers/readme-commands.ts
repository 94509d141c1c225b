// The shell commands the README gives an admin, read from the README itself, so that the
// tests that prove a section run exactly its commands: the ```sh blocks of one section
// (from its heading to the next heading of the same or a higher level), one command a
// line, comments and blank lines dropped.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../installer/checkout.js';

/** The commands of the ```sh blocks under the README heading `heading` (e.g. "## Rollback"). */
export function readmeCommands(heading: string): string[] {
  const lines = readFileSync(join(REPO, 'README.md'), 'utf8').split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`README has no heading "${heading}"`);
  const level = heading.indexOf(' ');
  const commands: string[] = [];
  let fence: string | null = null; // the opening line of the code block we are in
  for (const line of lines.slice(start + 1)) {
    if (fence === null && /^#{1,6} /.test(line) && line.indexOf(' ') <= level) break;
    if (line.startsWith('```')) {
      fence = fence === null ? line : null;
      continue;
    }
    if (fence !== '```sh') continue;
    // A trailing comment is for the reader; `#` inside a word (a URL's fragment) is not one.
    const command = line.replace(/(^|\s+)#.*$/, '').trim();
    if (command) commands.push(command);
  }
  if (commands.length === 0) throw new Error(`README section "${heading}" has no sh block`);
  return commands;
}

/** The one command of `heading` that starts with `prefix` (the test fails if there is none or several). */
export function readmeCommand(heading: string, prefix: string, not?: RegExp): string {
  const found = readmeCommands(heading).filter((c) => c.startsWith(prefix) && !(not && not.test(c)));
  if (found.length !== 1)
    throw new Error(`README "${heading}": ${found.length} commands start with "${prefix}": ${found.join(' | ')}`);
  return found[0]!;
}
