-- The claim index also holds what a claim filters on besides its order (the lease's expiry and
-- the run), so a claim skips the tasks in flight, whose live leases sit at the front of the
-- index, without reading their rows.
DROP INDEX cineflow_tasks_claimable;
CREATE INDEX cineflow_tasks_claimable
    ON cineflow_tasks (created_at_ns, id, lease_expires_at_ns, run_id)
    WHERE status IN ('pending', 'submitting', 'queued', 'running', 'downloading')
    AND waiting_for IS NULL;
