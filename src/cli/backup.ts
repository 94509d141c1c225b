// admp backup / admp restore: one archive with the bridge's database (pg_dump custom format)
// and the agents' private keys, for a Mailcow install (README "Backup").
import { resolve } from 'node:path';
import type { Command } from 'commander';
import Dockerode from 'dockerode';
import { dockerEngine } from '../installer/docker-engine.js';
import { backupMailcow, restoreMailcow } from '../backup/mailcow.js';
import { mailcowProject } from '../doctor/targets.js';
import { print } from './output.js';

const say = (line: string): void => void process.stderr.write(`${line}\n`);

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description("archive the bridge's database and the agents' private keys (Mailcow install)")
    .requiredOption('--mailcow-dir <dir>', 'mailcow-dockerized checkout the bridge was installed into')
    .requiredOption('--out <file>', 'archive to write (mode 0600)')
    .option('--json', 'print the manifest as JSON')
    .action(async (o: { mailcowDir: string; out: string; json?: boolean }) => {
      const project = await mailcowProject(resolve(o.mailcowDir));
      const m = await backupMailcow(dockerEngine(new Dockerode()), project, resolve(o.out), say);
      print(
        o.json,
        m,
        () => `backup ${resolve(o.out)}: database ${m.database.bytes} bytes, ${m.keys.length} key file(s)`,
      );
    });
  program
    .command('restore <archive>')
    .description(
      'restore an `admp backup` archive: database (one transaction) and keys; the bridge is stopped meanwhile',
    )
    .requiredOption('--mailcow-dir <dir>', 'mailcow-dockerized checkout the bridge is installed into')
    .option('--json', 'print the manifest as JSON')
    .action(async (archive: string, o: { mailcowDir: string; json?: boolean }) => {
      const project = await mailcowProject(resolve(o.mailcowDir));
      const m = await restoreMailcow(dockerEngine(new Dockerode()), project, resolve(archive), say);
      print(o.json, m, () => `restored ${resolve(archive)} (made ${m.created})`);
    });
}
