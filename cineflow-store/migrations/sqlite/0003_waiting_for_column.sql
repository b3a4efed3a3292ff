-- `waiting_for` becomes a plain column that the store writes with each task: as a virtual
-- column read out of the body, it made every write and every claim parse the JSON body.
-- SQLite drops a column only once no index names it: the claim index goes first, and comes
-- back on the new column.
DROP INDEX cineflow_tasks_claimable;
ALTER TABLE cineflow_tasks DROP COLUMN waiting_for;
ALTER TABLE cineflow_tasks ADD COLUMN waiting_for TEXT;
UPDATE cineflow_tasks SET waiting_for = json_extract(body, '$.waiting_for')
    WHERE json_extract(body, '$.waiting_for') IS NOT NULL;
CREATE INDEX cineflow_tasks_claimable ON cineflow_tasks (created_at_ns, id)
    WHERE status IN ('pending', 'submitting', 'queued', 'running', 'downloading')
    AND waiting_for IS NULL;
