-- The sequencer's pass (store/changes.rs, `Store::sequence_pending`), every 2 ms.
BEGIN;
SELECT pg_advisory_xact_lock(42);
WITH pending AS (
 SELECT id, row_number() OVER (ORDER BY id) AS rn FROM changes WHERE seq IS NULL ORDER BY id LIMIT 10000
), base AS (SELECT last FROM change_sequence WHERE id = 1),
upd AS (UPDATE changes c SET seq = base.last + pending.rn FROM pending, base WHERE c.id = pending.id RETURNING c.seq),
n AS (SELECT count(*) AS numbered FROM upd),
s AS (UPDATE change_sequence SET last = last + n.numbered FROM n WHERE id = 1 AND n.numbered > 0 RETURNING last)
SELECT COALESCE((SELECT last FROM s), base.last) AS last, n.numbered,
 CASE WHEN n.numbered > 0 THEN pg_notify('mooring_changes', (SELECT last FROM s)::text) END IS NULL AS quiet FROM base, n;
COMMIT;
\sleep 2 ms
