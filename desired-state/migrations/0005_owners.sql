-- The resource that owns a resource: a NodeSet owns its member Nodes. Owned
-- rows are written and deleted by the controller only (on the owner's
-- behalf); the API refuses to edit, roll back or delete them on their own.
ALTER TABLE resources ADD COLUMN owner_uid uuid;
CREATE INDEX resources_owner ON resources (owner_uid) WHERE owner_uid IS NOT NULL;
