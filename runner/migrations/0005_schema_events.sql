-- Drift in incoming files: a CSV with a column the Olist layout does not have loads, and its raw table gains a
-- text column for it. Each such change is recorded here, in the load's own transaction.
create table metadata.schema_events (
    event_id bigint generated always as identity primary key,
    batch_id uuid not null references metadata.load_batches (batch_id),
    file_name text not null,
    table_name text not null,
    column_name text not null,
    event text not null check (event in ('column_added')),
    occurred_at timestamptz not null default now()
);
