-- Change-driven runs: a window is due when a load placed rows in it (or took rows out of it) since its last
-- success, when it never succeeded, or when the dbt project changed since. The runner plans from these records
-- (runner/due.py) instead of from the watermark alone.

-- What a window's run saw: the snapshot of the runner's transaction that started it (taken before dbt reads
-- anything, so every load visible in it was visible to dbt), and the dbt project it ran with.
alter table metadata.window_runs
    add column data_snapshot pg_snapshot,
    add column project_fingerprint text;

-- The transaction that loaded a file: visible in a run's snapshot means that run saw the file. Files loaded
-- before this migration have none; a run is then taken to have seen the files loaded before it started.
alter table metadata.loaded_files add column loaded_xact xid8;
alter table metadata.loaded_files alter column loaded_xact set default pg_current_xact_id();

-- Where a file's rows land: the purchase days (and first and last purchase times in each) of every order the file
-- touches, over all of that order's loads, so that an order moved to another day makes both days due. A row with
-- no day stands for rows no window places: reference data, rows naming an order not loaded, implausible purchase
-- times. Worked out once per file, by the first plan after its load (placed_at).
alter table metadata.loaded_files add column placed_at timestamptz;

create table metadata.file_placements (
    batch_id uuid not null,
    file_name text not null,
    purchase_day date,
    first_purchased_at timestamp,
    last_purchased_at timestamp,
    foreign key (batch_id, file_name) references metadata.loaded_files (batch_id, file_name)
);

create index file_placements_day_idx on metadata.file_placements (purchase_day);
create index file_placements_file_idx on metadata.file_placements (batch_id, file_name);

-- The dbt project versions deployed on this database: Elementary's own models are built, and the project's
-- artifacts uploaded to Elementary, once per version instead of on every window.
create table metadata.project_deployments (
    fingerprint text primary key,
    deployed_at timestamptz not null default now()
);
