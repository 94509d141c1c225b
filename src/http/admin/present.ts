// Rows of the Admin service as the admin API (and the CLI, on either path) shows them.
import type { AddressTokenRow } from '../../admin/admin.js';
import { addressOfAgent } from '../../core/address.js';
import type { AddressToken } from './schemas.js';

export const presentAddressToken = (t: AddressTokenRow): AddressToken => ({
  address: `${t.token}@${t.domain}`,
  agent: addressOfAgent({ id: t.agent_id, domain: t.domain }),
  created_at: t.created_at.toISOString(),
  revoked_at: t.revoked_at?.toISOString() ?? null,
});
