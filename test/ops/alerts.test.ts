// The shipped Prometheus files: the rules and the config pass `promtool check`, and
// every alert passes the unit tests of compose/prometheus/alerts.test.yml.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { requireBinaries } from '../helpers/requires.js';

const run = promisify(execFile);
const DIR = join(import.meta.dirname, '..', '..', 'compose', 'prometheus');

const promtool = async (...args: string[]): Promise<string> => {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: DIR, timeout: 60_000 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    assert.fail(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
};

test('promtool accepts the rules and the scrape config', async (t) => {
  if (!requireBinaries(t, ['promtool'])) return;
  assert.match(await promtool('check', 'rules', 'alerts.yml'), /SUCCESS: \d+ rules found/);
  assert.match(await promtool('check', 'config', 'prometheus.yml'), /SUCCESS/);
});

test('every alert fires on its failure and stays quiet otherwise (promtool test rules)', async (t) => {
  if (!requireBinaries(t, ['promtool'])) return;
  assert.match(await promtool('test', 'rules', 'alerts.test.yml'), /SUCCESS/);
  // No alert without a unit test, and each is shown firing at least once.
  type Rules = { groups: { rules: { alert: string }[] }[] };
  type Tests = { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
  const alerts = (parse(readFileSync(join(DIR, 'alerts.yml'), 'utf8')) as Rules).groups.flatMap((g) =>
    g.rules.map((r) => r.alert),
  );
  const cases = (parse(readFileSync(join(DIR, 'alerts.test.yml'), 'utf8')) as Tests).tests.flatMap(
    (c) => c.alert_rule_test ?? [],
  );
  for (const a of alerts)
    assert.ok(
      cases.some((c) => c.alertname === a && c.exp_alerts.length > 0),
      `${a} has no test where it fires`,
    );
});
