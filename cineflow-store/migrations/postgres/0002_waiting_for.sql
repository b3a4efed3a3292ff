-- Continuity: a task waiting for another one (`waiting_for` in its body) is not claimable.
-- A generated column copies it out of the body, so every write path keeps it right. jsonb
-- cannot hold the escape \u0000 (which a body may carry, e.g. in an error message): it is read
-- as U+FFFD for this extraction only (the body itself is unchanged).
ALTER TABLE cineflow_tasks ADD COLUMN waiting_for TEXT
    GENERATED ALWAYS AS (replace(body, '\u0000', '\ufffd')::jsonb ->> 'waiting_for') STORED;
DROP INDEX cineflow_tasks_claimable;
CREATE INDEX cineflow_tasks_claimable ON cineflow_tasks (created_at_ns, id)
    WHERE status IN ('pending', 'submitting', 'queued', 'running', 'downloading')
    AND waiting_for IS NULL;
