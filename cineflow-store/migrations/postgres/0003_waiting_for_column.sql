-- `waiting_for` becomes a plain column that the store writes with each task: as a generated
-- column it cast every written body to jsonb. Dropping the expression keeps the column, its
-- stored values and the claim index on it as they are, without rewriting the table.
ALTER TABLE cineflow_tasks ALTER COLUMN waiting_for DROP EXPRESSION;
