-- Retention: the change feed keeps a window of changes (readers resume within
-- it; an older position is answered "expired" and the reader lists again),
-- and events are kept for a window after they were last seen. Revisions are
-- never compacted: they are the audit trail.
ALTER TABLE change_sequence ADD COLUMN compacted_through bigint NOT NULL DEFAULT 0;
CREATE INDEX events_last_seen ON events (last_seen);
