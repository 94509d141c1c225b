// The embedded PostgreSQL's logins. Any local process can reach a loopback port, so the
// cluster must not answer to a known password: a superuser can read every secret and run
// programs as the server's user (`COPY … TO PROGRAM`). At first start two random passwords
// are made and kept in a 0600 file beside the data directory: one for the cluster's
// superuser (kept for the operator; ADMP never connects as it after setup) and one for
// `admp_app`, a login role that owns the `admp` database and nothing else (not a superuser,
// cannot create roles or databases). The server and the CLI connect as `admp_app`.
//
// The same setup migrates data directories made by earlier versions, whose superuser was
// `admp` with password `admp` (the bootstrap superuser of such a cluster cannot lose its
// superuser attribute, so it keeps its name and gets a random password instead).
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';

export const DATABASE = 'admp';
export const APP_ROLE = 'admp_app';
/** What versions before the login file used: superuser admp/admp. */
const LEGACY = { user: 'admp', password: 'admp' } as const;

export interface Login {
  readonly superuser: string;
  readonly superuserPassword: string;
  readonly user: string;
  readonly password: string;
  /**
   * Present until setup has finished: the superuser's password as the cluster knows it
   * now (what initdb was given, or the legacy one). Setup replaces it with the above.
   */
  readonly bootstrapPassword?: string;
}

/** `<data_dir>/pg` → `<data_dir>/pg-login.json`: beside the cluster (initdb needs an empty directory). */
export const loginFile = (pgDataDir: string): string => join(dirname(pgDataDir), `${basename(pgDataDir)}-login.json`);

const secret = (): string => randomBytes(24).toString('base64url');

export function readLogin(pgDataDir: string): Login | undefined {
  const file = loginFile(pgDataDir);
  if (!existsSync(file)) return undefined;
  const l = JSON.parse(readFileSync(file, 'utf8')) as Login;
  for (const k of ['superuser', 'superuserPassword', 'user', 'password'] as const)
    if (typeof l[k] !== 'string' || l[k] === '') throw new Error(`${file}: "${k}" is missing`);
  return l;
}

/** Written whole or not at all (rename), readable by our user alone. */
function writeLogin(pgDataDir: string, login: Login): void {
  const file = loginFile(pgDataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(login, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600); // the mode above is masked by the umask; 0600 is never wider than intended
  renameSync(tmp, file);
}

/** For a cluster about to be made by initdb: the login file, with a throwaway bootstrap password. */
export function newLogin(pgDataDir: string): Login {
  // initdb reads the superuser password from a temporary file that others may be able to
  // read while it runs; that password is replaced as soon as the server is up.
  const login: Login = {
    superuser: 'postgres',
    superuserPassword: secret(),
    user: APP_ROLE,
    password: secret(),
    bootstrapPassword: secret(),
  };
  writeLogin(pgDataDir, login);
  return login;
}

/** For a data directory from an earlier version (no login file): its superuser admp/admp. */
export function legacyLogin(pgDataDir: string): Login {
  const login: Login = {
    superuser: LEGACY.user,
    superuserPassword: secret(),
    user: APP_ROLE,
    password: secret(),
    bootstrapPassword: LEGACY.password,
  };
  writeLogin(pgDataDir, login);
  return login;
}

export const urlFor = (port: number, user: string, password: string, database = DATABASE): string =>
  `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;

async function connect(port: number, user: string, passwords: readonly string[], database: string) {
  let last: unknown;
  for (const password of passwords) {
    const c = new pg.Client({ connectionString: urlFor(port, user, password, database) });
    try {
      await c.connect();
      return c;
    } catch (err) {
      last = err;
      await c.end().catch(() => undefined);
    }
  }
  throw last;
}

/**
 * Finishes a login file that still has a bootstrap password: sets the superuser's
 * password, makes `admp_app` and gives it the database and every object of ours in it.
 * Each step is safe to repeat, so a crash in between is finished by the next start.
 */
export async function completeSetup(pgDataDir: string, port: number, login: Login): Promise<Login> {
  if (login.bootstrapPassword === undefined) return login;
  const q = (s: string) => pg.Client.prototype.escapeLiteral(s);
  // The bootstrap password, or the final one when a previous start got past this step.
  const su = await connect(port, login.superuser, [login.bootstrapPassword, login.superuserPassword], 'postgres');
  try {
    await su.query(`ALTER ROLE ${login.superuser} PASSWORD ${q(login.superuserPassword)}`);
    const role = await su.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [login.user]);
    if (role.rowCount === 0) await su.query(`CREATE ROLE ${login.user} LOGIN`);
    await su.query(
      `ALTER ROLE ${login.user} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${q(login.password)}`,
    );
    const db = await su.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [DATABASE]);
    if (db.rowCount === 0) await su.query(`CREATE DATABASE ${DATABASE} OWNER ${login.user}`);
    else await su.query(`ALTER DATABASE ${DATABASE} OWNER TO ${login.user}`);
  } finally {
    await su.end();
  }
  // An earlier version's tables, sequences, functions and types belong to the superuser.
  const inDb = await connect(port, login.superuser, [login.superuserPassword], DATABASE);
  try {
    await inDb.query(`DO $$
DECLARE r record;
BEGIN
  -- Tables, views, standalone sequences (a column's sequence follows its table); extension members stay.
  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relowner = current_user::regrole
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype IN ('a', 'i', 'e'))
  LOOP EXECUTE format('ALTER TABLE %s OWNER TO ${login.user}', r.name); END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND p.proowner = current_user::regrole
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  LOOP EXECUTE format('ALTER ROUTINE %s OWNER TO ${login.user}', r.name); END LOOP;
  FOR r IN SELECT t.oid::regtype AS name FROM pg_type t
    WHERE t.typnamespace = 'public'::regnamespace AND t.typowner = current_user::regrole AND t.typtype IN ('e', 'd', 'r', 'm')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
  LOOP EXECUTE format('ALTER TYPE %s OWNER TO ${login.user}', r.name); END LOOP;
END $$`);
  } finally {
    await inDb.end();
  }
  const done: Login = {
    superuser: login.superuser,
    superuserPassword: login.superuserPassword,
    user: login.user,
    password: login.password,
  };
  writeLogin(pgDataDir, done);
  return done;
}
