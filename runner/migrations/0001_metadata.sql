-- The runner's own state. Forward-only: a later change is a new numbered file, never an edit of this one.

create schema if not exists raw;

-- One `runner load` invocation. Its files commit one by one, so a batch that failed part-way says so here.
create table metadata.load_batches (
    batch_id uuid primary key,
    source_dir text not null,
    status text not null check (status in ('running', 'succeeded', 'failed')),
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    error_message text
);

-- One file loaded into raw. The content hash is unique: the same bytes are never loaded twice.
create table metadata.loaded_files (
    batch_id uuid not null references metadata.load_batches (batch_id),
    file_name text not null,
    entity text not null,
    content_sha256 text not null unique,
    byte_count bigint not null,
    row_count bigint not null,
    loaded_at timestamptz not null default now(),
    primary key (batch_id, file_name)
);

-- How far each pipeline has processed: the end of the latest window that succeeded.
create table metadata.watermarks (
    pipeline text primary key,
    watermark timestamp not null,
    updated_at timestamptz not null default now()
);

-- One processed window [window_start, window_end).
create table metadata.window_runs (
    run_id uuid primary key,
    pipeline text not null,
    window_start timestamp not null,
    window_end timestamp not null,
    status text not null check (status in ('running', 'succeeded', 'failed')),
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    dbt_invocation_id text,
    error_message text,
    check (window_end > window_start)
);

create index window_runs_window_idx on metadata.window_runs (pipeline, window_start, window_end);
