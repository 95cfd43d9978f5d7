-- An operator's latest request about a resource's rollout (`mooring rollout
-- promote|abort`): neither spec (a GitOps sync would see it as drift) nor
-- status (the controller's to write). The controller honours it only for the
-- service deployment it names, so an old request never touches a new rollout.
ALTER TABLE resources ADD COLUMN rollout_request jsonb;
