-- Continuity: a task waiting for another one (`waiting_for` in its body) is not claimable.
-- A virtual column copies it out of the body, so every write path keeps it right.
ALTER TABLE cineflow_tasks ADD COLUMN waiting_for TEXT
    GENERATED ALWAYS AS (json_extract(body, '$.waiting_for')) VIRTUAL;
DROP INDEX cineflow_tasks_claimable;
CREATE INDEX cineflow_tasks_claimable ON cineflow_tasks (created_at_ns, id)
    WHERE status IN ('pending', 'submitting', 'queued', 'running', 'downloading')
    AND waiting_for IS NULL;
