// An in-process ADMP core on a fresh test database, driven through app.inject().
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { addAgent } from '../../src/db/agents.js';
import { wire, type Core, type WireOptions } from '../../src/app/server.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export interface TestAgent {
  id: string;
  address: string;
  token: string;
  hmac_secret: string;
  auth: { authorization: string };
}

export interface TestApi {
  readonly db: TestDatabase;
  readonly config: Config;
  readonly core: Core;
  agent(id: string, domain?: string): Promise<TestAgent>;
  close(): Promise<void>;
}

export async function startTestApi(env: Record<string, string> = {}, options: WireOptions = {}): Promise<TestApi> {
  const db = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: db.url,
    ADMP_DOMAINS: 'agents.test,agents.other.test',
    ADMP_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
  const core = await wire(config, db, createLogger(config.logLevel), options);
  return {
    db,
    config,
    core,
    async agent(id, domain = 'agents.test') {
      const a = await addAgent(db.pool, id, domain);
      return {
        id,
        address: `${id}@${domain}`,
        token: a.token,
        hmac_secret: a.hmac_secret,
        auth: { authorization: `Bearer ${a.token}` },
      };
    },
    async close() {
      await core.stop();
      await db.drop();
    },
  };
}
