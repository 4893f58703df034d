-- Every raw row of the window is accounted for: loaded = staged + quarantined, plus the rows a later batch
-- superseded (a restatement, not a defect). A row belongs to the window of its order's purchase time; rows no
-- window can claim (their order's time is unknown) must all be in quarantine, whatever the window.
-- Returns one row per entity (and placed / unplaced) whose counts do not add up.

{{ config(tags=['reconciliation']) }}

with

raw_rows as (

    select
        'orders' as entity,
        order_purchased_at is null as is_unplaced,
        disposition
    from {{ ref('base_olist__orders') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null

    union all

    select
        'order_items' as entity,
        order_purchased_at is null as is_unplaced,
        disposition
    from {{ ref('base_olist__order_items') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null

    union all

    select
        'order_payments' as entity,
        order_purchased_at is null as is_unplaced,
        disposition
    from {{ ref('base_olist__order_payments') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null

    union all

    select
        'order_reviews' as entity,
        order_purchased_at is null as is_unplaced,
        disposition
    from {{ ref('base_olist__order_reviews') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null

    union all

    select
        'customers' as entity,
        order_purchased_at is null as is_unplaced,
        disposition
    from {{ ref('base_olist__customers') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null

),

loaded_counts as (

    select
        entity,
        is_unplaced,
        count(*) as loaded_rows,
        count(*) filter (where disposition = 'superseded') as superseded_rows
    from raw_rows
    group by 1, 2

),

staged_counts as (

    select
        'orders' as entity,
        count(*) as staged_rows
    from {{ ref('stg_olist__orders') }}
    where {{ in_watermark_window('purchased_at') }}

    union all

    select
        'order_items' as entity,
        count(*) as staged_rows
    from {{ ref('stg_olist__order_items') }}
    where {{ in_watermark_window('order_purchased_at') }}

    union all

    select
        'order_payments' as entity,
        count(*) as staged_rows
    from {{ ref('stg_olist__order_payments') }}
    where {{ in_watermark_window('order_purchased_at') }}

    union all

    select
        'order_reviews' as entity,
        count(*) as staged_rows
    from {{ ref('stg_olist__order_reviews') }}
    where {{ in_watermark_window('order_purchased_at') }}

    union all

    select
        'customers' as entity,
        count(*) as staged_rows
    from {{ ref('stg_olist__customers') }}
    where {{ in_watermark_window('order_purchased_at') }}

),

quarantined_counts as (

    select
        'orders' as entity,
        order_purchased_at is null as is_unplaced,
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__orders') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null
    group by 1, 2

    union all

    select
        'order_items' as entity,
        order_purchased_at is null as is_unplaced,
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__order_items') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null
    group by 1, 2

    union all

    select
        'order_payments' as entity,
        order_purchased_at is null as is_unplaced,
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__order_payments') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null
    group by 1, 2

    union all

    select
        'order_reviews' as entity,
        order_purchased_at is null as is_unplaced,
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__order_reviews') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null
    group by 1, 2

    union all

    select
        'customers' as entity,
        order_purchased_at is null as is_unplaced,
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__customers') }}
    where {{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null
    group by 1, 2

)

select
    loaded_counts.entity,
    loaded_counts.is_unplaced,
    loaded_counts.loaded_rows,
    loaded_counts.superseded_rows,
    coalesce(quarantined_counts.quarantined_rows, 0) as quarantined_rows,
    case when loaded_counts.is_unplaced then 0 else coalesce(staged_counts.staged_rows, 0) end as staged_rows
from loaded_counts
left join staged_counts
    on loaded_counts.entity = staged_counts.entity
left join quarantined_counts
    on
        loaded_counts.entity = quarantined_counts.entity
        and loaded_counts.is_unplaced = quarantined_counts.is_unplaced
where
    loaded_counts.loaded_rows
    != loaded_counts.superseded_rows
    + coalesce(quarantined_counts.quarantined_rows, 0)
    + case when loaded_counts.is_unplaced then 0 else coalesce(staged_counts.staged_rows, 0) end
