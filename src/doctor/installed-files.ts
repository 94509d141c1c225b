// The doctor's check of the installer's files in a Mailcow checkout: each file the install
// record names still holds what the installer wrote (Mailcow's update.sh must leave them, being
// untracked and ignored; an admin's edit or a lost file shows here). Contents only: Mailcow's
// Postfix resets custom_transport.pcre to 0640 at every start, which changes nothing.
import { readSnapshot } from '../installer/file-transaction.js';
import { parseState, sha256 } from '../installer/install-state.js';
import { STATE_FILE } from '../installer/layout.js';
import { MANAGED_FILES } from '../installer/plan.js';
import { fail, pass, type Check } from './report.js';

export function installedFilesCheck(mailcowDir: string): Check {
  return {
    name: "ADMP's files in the Mailcow checkout are as installed",
    async run() {
      const snapshot = await readSnapshot(mailcowDir, MANAGED_FILES);
      const state = parseState(snapshot.get(STATE_FILE) ?? null);
      if (!state) return fail(`no ${STATE_FILE}: ADMP is not installed here`, 'run ./install.sh');
      const changed = Object.entries(state.files)
        .filter(([path, rec]) => {
          const now = snapshot.get(path);
          return now === null || now === undefined || sha256(now) !== rec.after;
        })
        .map(([path]) => path);
      return changed.length === 0
        ? pass(`${Object.keys(state.files).length} files as installed (domain ${state.domain}, mode ${state.mode})`)
        : fail(
            `changed or missing since the install: ${changed.join(', ')}`,
            'run ./install.sh again (it shows the diff first)',
          );
    },
  };
}
