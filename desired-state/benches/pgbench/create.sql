-- The statement of one API create (store/resources.rs, `Store::write_in`):
-- the row, its signed revision, its change and its name claim, with a
-- realistic stored Relay spec (defaults filled in). Kept in step with the
-- store by hand; `run.sh` measures it with pgbench.
CREATE OR REPLACE FUNCTION create_one(p_name text) RETURNS SETOF uuid LANGUAGE plpgsql AS $f$
BEGIN
RETURN QUERY WITH r AS (
 INSERT INTO resources (uid, kind, namespace, name, labels, annotations, spec, spec_hash, generation,
 resource_version, finalizers, created_at, source, source_actor, source_commit, revision_hash, applied_revision)
 VALUES (gen_random_uuid(), 'Relay', 'bench', p_name, '{}', '{}',
 '{"cluster":"prod","containers":[{"name":"app","image":"nginx:1.25","port":8000,"cpu":256,"memory":512,"env":{},"secrets":{},"essential":true}],"scaling":{"min":1,"max":4,"cpuTargetPercent":70,"scaleInAfterIdleSeconds":600},"deployment":{"strategy":"Rolling","circuitBreaker":true,"minHealthyPercent":100,"maxPercent":200},"desiredCount":null,"launchType":"FARGATE","networkMode":"awsvpc","tags":{}}',
 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 1, nextval('resource_versions'), '{mooring.dev/cleanup}', now(), 'api', 'bench', NULL,
 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789', NULL)
 ON CONFLICT (kind, namespace, name) DO NOTHING RETURNING *
), rev AS (
 INSERT INTO revisions (uid, kind, namespace, name, generation, spec, spec_hash, source, actor,
 source_commit, created_at, prev_hash, hash, key_id, signature)
 SELECT uid, kind, namespace, name, generation, spec, spec_hash, source, source_actor, source_commit,
 created_at, NULL, revision_hash, 'key-1', 'c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl' FROM r
), ch AS (
 INSERT INTO changes (kind, namespace, name, uid, op, generation, resource_version)
 SELECT kind, namespace, name, uid, 'create', generation, resource_version FROM r
), cl AS (
 INSERT INTO name_claims (name, uid) SELECT 'ecs:' || namespace || '_' || name, uid FROM r
) SELECT r.uid FROM r;
END $f$;

-- The resources row alone (its seven indexes), for comparison.
CREATE OR REPLACE FUNCTION create_row(p_name text) RETURNS SETOF uuid LANGUAGE plpgsql AS $f$
BEGIN
RETURN QUERY WITH r AS (
 INSERT INTO resources (uid, kind, namespace, name, labels, annotations, spec, spec_hash, generation,
 resource_version, finalizers, created_at, source, source_actor, source_commit, revision_hash, applied_revision)
 VALUES (gen_random_uuid(), 'Relay', 'bench', p_name, '{}', '{}',
 '{"cluster":"prod","containers":[{"name":"app","image":"nginx:1.25","port":8000,"cpu":256,"memory":512,"env":{},"secrets":{},"essential":true}],"scaling":{"min":1,"max":4,"cpuTargetPercent":70,"scaleInAfterIdleSeconds":600},"deployment":{"strategy":"Rolling","circuitBreaker":true,"minHealthyPercent":100,"maxPercent":200},"desiredCount":null,"launchType":"FARGATE","networkMode":"awsvpc","tags":{}}',
 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 1, nextval('resource_versions'), '{mooring.dev/cleanup}', now(), 'api', 'bench', NULL,
 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789', NULL)
 ON CONFLICT (kind, namespace, name) DO NOTHING RETURNING *
) SELECT r.uid FROM r;
END $f$;
