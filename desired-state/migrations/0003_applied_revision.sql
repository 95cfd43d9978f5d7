-- The git commit whose documents last created or changed a resource through a
-- GitOps sync. Unlike source_commit (the source of the last spec change), it is
-- kept when the resource is later edited through the API, so drift can be told
-- from what git last applied.
ALTER TABLE resources ADD COLUMN applied_revision text;
UPDATE resources SET applied_revision = source_commit WHERE source = 'gitops';
