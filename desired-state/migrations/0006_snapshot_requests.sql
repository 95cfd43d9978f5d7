-- An operator's latest request for a snapshot of a node's data volume
-- (`mooring node snapshot`): kept beside the resource like a rollout request,
-- neither spec (GitOps would see drift) nor status (the controller's). The
-- controller acts on a request once: its status records the time of the last
-- request it handled.
ALTER TABLE resources ADD COLUMN snapshot_request jsonb;
