-- cineflow store schema (SQLite). Each record's full JSON is in `body` (the source of truth);
-- the other columns are copies for filters and sorts. Task `revision` and lease columns are
-- managed by the store. Timestamps are nanoseconds since the Unix epoch.

CREATE TABLE cineflow_storyboards (
    id            TEXT    NOT NULL PRIMARY KEY,
    created_at_ns INTEGER NOT NULL,
    body          TEXT    NOT NULL
);
CREATE INDEX cineflow_storyboards_newest ON cineflow_storyboards (created_at_ns DESC, id);

CREATE TABLE cineflow_segments (
    id            TEXT NOT NULL PRIMARY KEY,
    storyboard_id TEXT NOT NULL REFERENCES cineflow_storyboards (id)
);
CREATE INDEX cineflow_segments_storyboard ON cineflow_segments (storyboard_id);

CREATE TABLE cineflow_runs (
    id            TEXT    NOT NULL PRIMARY KEY,
    storyboard_id TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    created_at_ns INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    body          TEXT    NOT NULL
);
CREATE INDEX cineflow_runs_newest ON cineflow_runs (created_at_ns DESC, id);
CREATE INDEX cineflow_runs_storyboard ON cineflow_runs (storyboard_id, created_at_ns DESC, id);
CREATE INDEX cineflow_runs_status ON cineflow_runs (status, created_at_ns DESC, id);

CREATE TABLE cineflow_tasks (
    id                  TEXT    NOT NULL PRIMARY KEY,
    run_id              TEXT    NOT NULL REFERENCES cineflow_runs (id),
    status              TEXT    NOT NULL,
    segment_index       INTEGER NOT NULL,
    version_index       INTEGER NOT NULL,
    error_code          TEXT,
    retryable           INTEGER NOT NULL,
    created_at_ns       INTEGER NOT NULL,
    revision            INTEGER NOT NULL,
    lease_owner         TEXT,
    lease_token         INTEGER,
    lease_expires_at_ns INTEGER,
    body                TEXT    NOT NULL
);
CREATE INDEX cineflow_tasks_run_segment ON cineflow_tasks (run_id, segment_index, version_index, id);
CREATE INDEX cineflow_tasks_run_created ON cineflow_tasks (run_id, created_at_ns, id);
CREATE INDEX cineflow_tasks_segment ON cineflow_tasks (segment_index, version_index, id);
CREATE INDEX cineflow_tasks_created ON cineflow_tasks (created_at_ns, id);
CREATE INDEX cineflow_tasks_status ON cineflow_tasks (status);
CREATE INDEX cineflow_tasks_error_code ON cineflow_tasks (error_code) WHERE error_code IS NOT NULL;
CREATE INDEX cineflow_tasks_claimable ON cineflow_tasks (created_at_ns, id)
    WHERE status IN ('pending', 'submitting', 'queued', 'running', 'downloading');

-- Lease tokens: one counter shared by every process using this database file.
CREATE TABLE cineflow_counters (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO cineflow_counters (name, value) VALUES ('lease_token', 0);
