// The delivery_log entry every state change appends: when, what, and its details.
export const LOG = (event: string, extra = "'{}'::jsonb") =>
  `delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', '${event}') || ${extra})`;
