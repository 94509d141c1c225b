-- 0004_notify_plpgsql: notify_enqueued runs once per enqueue commit. As a LANGUAGE sql
-- function of two statements it cannot be inlined, and PostgreSQL (before 18) parses
-- and plans such a body on every call; plpgsql keeps its plans for the session.
-- Same signature and behaviour as in 0001. CREATE OR REPLACE: safe to run twice.
CREATE OR REPLACE FUNCTION notify_enqueued(inboxes text[], outbound boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('admp_inbox', a) FROM unnest(inboxes) AS a;
  IF outbound THEN PERFORM pg_notify('admp_outbound', ''); END IF;
END $$;
