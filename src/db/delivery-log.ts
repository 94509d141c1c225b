// The delivery_log entry every state change appends: when, what, and its details.
// `extra` must not read a column: Citus evaluates now() in an UPDATE on the coordinator,
// and refuses a non-immutable function that takes a column.
export const LOG = (event: string, extra = "'{}'::jsonb") =>
  `delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', '${event}') || ${extra})`;
