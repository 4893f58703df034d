-- Recovery: batches can be rolled back, and the marts are published blue/green as numbered versions.

-- A rolled-back batch keeps its record (who loaded what, when) and says when it was taken out of raw.
alter table metadata.load_batches add column rolled_back_at timestamptz;
alter table metadata.loaded_files add column rolled_back_at timestamptz;

-- The same bytes are still never loaded twice, unless their batch was rolled back.
alter table metadata.loaded_files drop constraint loaded_files_content_sha256_key;
create unique index loaded_files_content_sha256_key on metadata.loaded_files (content_sha256)
where rolled_back_at is null;

-- One build of all the marts. The active version lives in schema `mart`, where readers look; the others are
-- parked in `mart__v<version>` until they are activated again (rollback) or dropped after the retention time.
create table metadata.mart_versions (
    version integer primary key,
    status text not null check (status in ('built', 'active', 'retired', 'rolled_back', 'dropped')),
    -- SHA-256 of the marts' compiled SQL: tells whether the models changed since the version was built.
    definition_sha256 text not null,
    built_at timestamptz not null default now(),
    activated_at timestamptz,
    deactivated_at timestamptz,
    dropped_at timestamptz
);

create unique index mart_versions_one_active_idx on metadata.mart_versions ((true)) where status = 'active';

-- The design's `active_version`: which mart version readers of `mart.*` see, and since when.
create view metadata.active_version as
select
    version as active_version,
    activated_at,
    definition_sha256
from metadata.mart_versions
where status = 'active';
