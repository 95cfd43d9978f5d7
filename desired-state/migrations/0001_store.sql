-- Mooring's desired state. Postgres is the source of truth.

-- One row per resource. `spec` is the validated spec with defaults filled in.
CREATE TABLE resources (
    uid                 uuid PRIMARY KEY,
    kind                text        NOT NULL,
    namespace           text        NOT NULL,
    name                text        NOT NULL,
    labels              jsonb       NOT NULL DEFAULT '{}',
    annotations         jsonb       NOT NULL DEFAULT '{}',
    spec                jsonb       NOT NULL,
    spec_hash           text        NOT NULL,
    status              jsonb       NOT NULL DEFAULT '{}',
    generation          bigint      NOT NULL,
    -- Moves on every write; optimistic concurrency compares it.
    resource_version    bigint      NOT NULL,
    finalizers          text[]      NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    deletion_timestamp  timestamptz,
    -- Where the last spec change came from: api | gitops | rollback.
    source              text        NOT NULL,
    source_actor        text,
    source_commit       text,
    -- The highest lease fencing token a status write has carried.
    status_fence        bigint      NOT NULL DEFAULT 0,
    -- The hash of the newest revision, which the next revision chains to.
    revision_hash       text,
    UNIQUE (kind, namespace, name)
);
CREATE INDEX resources_labels ON resources USING gin (labels jsonb_path_ops);
CREATE INDEX resources_list ON resources (kind, namespace, name);

CREATE SEQUENCE resource_versions;

-- Append-only history: one row per generation of a resource, chained by hash and
-- signed with Ed25519. Triggers below refuse UPDATE and DELETE.
CREATE TABLE revisions (
    id              bigserial PRIMARY KEY,
    uid             uuid        NOT NULL,
    kind            text        NOT NULL,
    namespace       text        NOT NULL,
    name            text        NOT NULL,
    generation      bigint      NOT NULL,
    spec            jsonb       NOT NULL,
    spec_hash       text        NOT NULL,
    source          text        NOT NULL,
    actor           text,
    source_commit   text,
    created_at      timestamptz NOT NULL,
    prev_hash       text,
    hash            text        NOT NULL,
    key_id          text        NOT NULL,
    signature       text        NOT NULL,
    UNIQUE (uid, generation)
);
CREATE INDEX revisions_by_name ON revisions (kind, namespace, name, generation DESC);

CREATE FUNCTION refuse_revision_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'revisions are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER revisions_append_only
    BEFORE UPDATE OR DELETE ON revisions
    FOR EACH ROW EXECUTE FUNCTION refuse_revision_change();
CREATE TRIGGER revisions_no_truncate
    BEFORE TRUNCATE ON revisions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_revision_change();

-- Public keys that signed revisions, so `audit verify` can check old rows after a
-- key rotation.
CREATE TABLE signing_keys (
    key_id      text PRIMARY KEY,
    public_key  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The change feed. Writers insert rows with seq NULL in their own transaction;
-- the sequencer numbers committed rows in the order it sees them (commit order),
-- gap-free, so a reader that resumes after `seq` never misses a change. Writers
-- do not NOTIFY (a NOTIFY serializes commits); the sequencer of the writing
-- process is woken in memory, other processes' sequencers poll, and each
-- sequencing pass sends one NOTIFY on `mooring_changes` to wake readers.
CREATE TABLE changes (
    id                bigserial PRIMARY KEY,
    seq               bigint UNIQUE,
    kind              text        NOT NULL,
    namespace         text        NOT NULL,
    name              text        NOT NULL,
    uid               uuid        NOT NULL,
    op                text        NOT NULL,
    generation        bigint      NOT NULL,
    resource_version  bigint      NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_unsequenced ON changes (id) WHERE seq IS NULL;

CREATE TABLE change_sequence (
    id    int PRIMARY KEY CHECK (id = 1),
    last  bigint NOT NULL
);
INSERT INTO change_sequence VALUES (1, 0);

-- Kubernetes-style events, deduplicated by (uid, type, reason, message).
CREATE TABLE events (
    id           bigserial PRIMARY KEY,
    uid          uuid        NOT NULL,
    kind         text        NOT NULL,
    namespace    text        NOT NULL,
    name         text        NOT NULL,
    type         text        NOT NULL,
    reason       text        NOT NULL,
    message      text        NOT NULL,
    count        integer     NOT NULL DEFAULT 1,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (uid, type, reason, message)
);
CREATE INDEX events_by_resource ON events (kind, namespace, name, last_seen DESC);

-- API tokens, stored as SHA-256 of the secret.
CREATE TABLE api_tokens (
    name        text PRIMARY KEY,
    token_hash  text UNIQUE NOT NULL,
    scopes      text[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
