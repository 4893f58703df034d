-- The window ledger grows into the operator's record: which runner run built the window, how long each stage
-- took, how many rows each layer holds for it, its lineage run, and on failure the error's class.

alter table metadata.window_runs
    add column runner_run_id uuid,
    add column stage_durations_ms jsonb not null default '{}',
    add column row_counts jsonb not null default '{}',
    add column openlineage_run_id uuid,
    add column error_class text;

create index window_runs_status_idx on metadata.window_runs (pipeline, status, window_start);
