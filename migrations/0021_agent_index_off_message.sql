-- 0021_agent_index_off_message: the agent index (to_agent_id, created_at) moves off message
-- onto message_search, as 0019 did for sender, correlation id and time. Every status change
-- on message is a non-HOT update (status is in the claim indexes' predicates), so each index
-- without a predicate gets a new entry on every claim and every ack: this one cost one index
-- insert and WAL record per message per claim and per ack (a pull+ack cycle of 10 messages
-- wrote 108 WAL records with it, 87 without). On message_search it gets its one entry when
-- the message is stored.
-- The reads that used it find their rows otherwise:
--  - dead letters of an agent (list, redrive, search): message_dead, entries only for dead rows;
--  - waiting messages of an agent (the max_inbox check, the sweeper's per-agent lease
--    expiry): message_inbox_seq for delivered, message_leases_by_agent for leased;
--  - an agent's depth by status and the admin search by agent: message_search joined to
--    message by its primary key.
-- message_leases keeps its one entry per claim; its new leading column lets the per-agent
-- reads use it, and the sweeper's search for expired leases across agents reads all leased
-- entries (the messages in flight) instead of a range of them.
-- message_mail_message_id goes: no statement looks a message up by its mail Message-ID (a
-- delivery report finds its message by the id in the bounce address), and its predicate is
-- not on status, so each mail's claim and ack wrote an entry to it as well.
-- IF [NOT] EXISTS throughout: safe to run twice. Valid on Citus (indexes on distributed
-- tables are created on every shard).
CREATE INDEX IF NOT EXISTS message_search_by_agent ON message_search (to_agent_id, created_at);
CREATE INDEX IF NOT EXISTS message_dead ON message (to_agent_id, created_at) WHERE status = 'dead';
CREATE INDEX IF NOT EXISTS message_leases_by_agent ON message (to_agent_id, lease_until) WHERE status = 'leased';
DROP INDEX IF EXISTS message_leases;
DROP INDEX IF EXISTS message_search_agent;
DROP INDEX IF EXISTS message_mail_message_id;
