// Pull with a lease (long poll), inbox depth, dead letters and redrive.
import { AdmpError } from '../../errors.js';
import { DeadList, DeadQuery, InboxDepth, PullBody, PullResponse, RedriveBody, RedriveResponse } from '../schemas.js';
import { presentAcks, presentPulled, presentStatus } from '../present.js';
import { apiRoutes } from '../deps.js';

export const inboxRoutes = apiRoutes(async (app, { mailbox, auth }) => {
  app.post('/v1/inbox/pull', { schema: { body: PullBody, response: { 200: PullResponse } } }, async (req) => {
    const c = req.caller!;
    // Acks of the previous batch ride along (one call, one transaction per batch).
    const { max, visibility_timeout, wait, ack } = req.body;
    const { rows, acked } = await mailbox.pull(c, {
      max,
      visibility_timeout,
      wait,
      ack,
      // A parked long poll that wakes checks its credential again: a revoked one gets nothing.
      // Only a long poll parks, so only it gets the closure (a busy consumer's pull makes none).
      recheck: wait ? () => auth.recheck(req, c) : undefined,
    });
    const one = rows.length === 1 ? rows[0]! : undefined;
    // Undefined fields are left out of the log line.
    req.summary = {
      pulled: rows.length,
      acked: ack?.length,
      message_id: one?.id,
      correlation_id: one?.correlation_id ?? undefined,
      channel: one?.channel,
    };
    const messages = rows.map((m) => presentPulled(m, c.address));
    return ack ? { acked: presentAcks(ack, acked), messages } : { messages };
  });

  app.get('/v1/inbox', { schema: { response: { 200: InboxDepth } } }, async (req) => {
    const c = req.caller!;
    return { agent: c.address, depth: await mailbox.depth(c) };
  });

  app.get('/v1/dead', { schema: { querystring: DeadQuery, response: { 200: DeadList } } }, async (req) => {
    const c = req.caller!;
    const rows = await mailbox.deadLetters(c, Number(req.query.limit), req.query.before);
    return { messages: rows.map((m) => ({ ...presentStatus(m, c.address), body: m.body })) };
  });

  app.post('/v1/dead/redrive', { schema: { body: RedriveBody, response: { 200: RedriveResponse } } }, async (req) => {
    const { ids, all } = req.body;
    if ((ids === undefined) === (all !== true))
      throw new AdmpError('bad_request', 'body: give either ids or "all": true', { field: 'body' });
    return { redriven: await mailbox.redrive(req.caller!, ids ?? 'all') };
  });
});
