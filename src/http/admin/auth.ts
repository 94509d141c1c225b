// Admin API authentication: `Authorization: Bearer admpadm_…` only. The token is a
// header, never a cookie, so a page on another site cannot make a browser send it
// (no CSRF). A read-only token may read everything and change nothing: every method
// but GET and HEAD is refused before the route runs, unless the route is marked
// `config: { readsOnly: true }` (a POST that computes, like the policy dry-run).
import type { FastifyRequest } from 'fastify';
import { AdmpError } from '../../errors.js';
import type { Admin } from '../../admin/admin.js';
import type { AdminToken } from '../../admin/operations.js';

export async function authenticateAdmin(ops: Admin, req: FastifyRequest): Promise<AdminToken> {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m) throw new AdmpError('unauthorized', 'missing credentials: Authorization: Bearer <admin token>');
  const admin = await ops.authenticate(m[1]!);
  const readsOnly = (req.routeOptions.config as { readsOnly?: boolean } | undefined)?.readsOnly === true;
  if (admin.read_only && req.method !== 'GET' && req.method !== 'HEAD' && !readsOnly)
    throw new AdmpError('forbidden', `admin token ${admin.id} is read-only`);
  return admin;
}

declare module 'fastify' {
  interface FastifyRequest {
    admin?: AdminToken;
  }
}
