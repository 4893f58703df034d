{% test quarantine_share_within_threshold(model, window_column, judged) %}
{#- The window stops here when too much of what it judged was quarantined, in either of two ways:
    - more than var('quarantine_max_share') of an entity's rows in the window: too much of it is bad to call it
      done;
    - more than var('unplaced_max_share') of one file's rows (an entity's rows of one load batch) are rows no
      window can place (an orphan's order is in no orders file): a few late parents are normal, most of a file
      is an incident, and outside every window's share it would otherwise pass unseen.
    A test on the staging model that counts the quarantined rows in the base model the staging model reads (the
    rows quarantined_rows keeps), so every parent of the test is upstream of core: a failure skips everything
    downstream of staging (core, snapshots) and nothing is published, while the quarantine tables, beside
    staging, still record what was set aside. Returns one row per share over its threshold: the window's, or a
    file's. -#}

with

staged as (

    select count(*) as staged_rows
    from {{ model }}
    where {{ in_watermark_window(window_column) }}

),

quarantined as (

    select count(*) as quarantined_rows
    from {{ judged }}
    where disposition = 'quarantined' and {{ in_watermark_window('order_purchased_at') }}

),

-- The base model judges the unplaced rows on every run, of every batch still loaded.
unplaced as (

    select
        batch_id,
        source_file,
        count(*) as unplaced_rows,
        {{ sorted_distinct_list('quarantine_rule', ', ') }} as rules
    from {{ judged }}
    where disposition = 'quarantined' and order_purchased_at is null
    group by batch_id, source_file

),

loaded_files as (

    select
        batch_id,
        file_name,
        row_count
    from {{ source('runner', 'loaded_files') }}
    where rolled_back_at is null

),

window_share as (

    select
        'window' as scope,
        cast(null as {{ sql_type('uuid') }}) as batch_id,
        cast(null as {{ sql_type('text') }}) as source_file,
        cast(null as {{ sql_type('text') }}) as rules,
        quarantined.quarantined_rows as over_rows,
        staged.staged_rows + quarantined.quarantined_rows as of_rows,
        {{ number_var('quarantine_max_share', 0, 1) }} as max_share
    from staged
    cross join quarantined

),

file_shares as (

    select
        'unplaced' as scope,
        unplaced.batch_id,
        unplaced.source_file,
        unplaced.rules,
        unplaced.unplaced_rows as over_rows,
        loaded_files.row_count as of_rows,
        {{ number_var('unplaced_max_share', 0, 1) }} as max_share
    from unplaced
    inner join loaded_files
        on unplaced.batch_id = loaded_files.batch_id and unplaced.source_file = loaded_files.file_name

),

shares as (

    select * from window_share
    union all
    select * from file_shares

)

select
    scope,
    batch_id,
    source_file,
    rules,
    over_rows,
    of_rows,
    max_share
from shares
where over_rows > max_share * of_rows

{% endtest %}
