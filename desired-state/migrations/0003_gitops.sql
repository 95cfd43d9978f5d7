-- The git commit whose documents last created or changed a resource through a
-- GitOps sync. Unlike source_commit (the source of the last spec change), it is
-- kept when the resource is later edited through the API, so drift can be told
-- from what git last applied.
ALTER TABLE resources ADD COLUMN applied_revision text;
UPDATE resources SET applied_revision = source_commit WHERE source = 'gitops';

-- GitOps sources (a repository and path, by the name its pipeline gives with
-- `mooring sync --source`): the last commit synced, and whether syncs are
-- suspended (`mooring sync --suspend`), so an incident fix made through the API
-- is not reverted by the next commit until the source is resumed.
CREATE TABLE gitops_sources (
    name            text PRIMARY KEY,
    suspended       boolean     NOT NULL DEFAULT false,
    suspended_by    text,
    suspended_at    timestamptz,
    reason          text,
    last_revision   text,
    last_synced_at  timestamptz,
    last_synced_by  text
);
