-- A task row is written some ten times in its life, and half of those writes change no indexed
-- column (lease renewals, progress, the vendor's latest answer): Postgres can make them
-- heap-only updates, which touch none of the table's seven indexes, but only when the row's
-- page has room for the new version. Pages filled to 70 % keep that room (new pages only:
-- existing rows are left where they are).
ALTER TABLE cineflow_tasks SET (fillfactor = 70);
