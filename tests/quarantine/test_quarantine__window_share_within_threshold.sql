-- A window whose quarantined share of rows passes var('quarantine_max_share') stops here, before anything
-- downstream is built or published: too much of it is bad to call it done. Counted over the window's rows of
-- every windowed entity (staged + quarantined). Returns the window's figures when it is over the threshold.

{{ config(tags=['quarantine']) }}

with

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
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__orders') }}
    where {{ in_watermark_window('order_purchased_at') }}

    union all

    select
        'order_items' as entity,
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__order_items') }}
    where {{ in_watermark_window('order_purchased_at') }}

    union all

    select
        'order_payments' as entity,
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__order_payments') }}
    where {{ in_watermark_window('order_purchased_at') }}

    union all

    select
        'order_reviews' as entity,
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__order_reviews') }}
    where {{ in_watermark_window('order_purchased_at') }}

    union all

    select
        'customers' as entity,
        count(*) as quarantined_rows
    from {{ ref('quarantine_olist__customers') }}
    where {{ in_watermark_window('order_purchased_at') }}

),

window_totals as (

    select
        sum(staged_counts.staged_rows) as staged_rows,
        sum(quarantined_counts.quarantined_rows) as quarantined_rows
    from staged_counts
    inner join quarantined_counts
        on staged_counts.entity = quarantined_counts.entity

)

select
    staged_rows,
    quarantined_rows,
    round(quarantined_rows / nullif(staged_rows + quarantined_rows, 0), 4) as quarantined_share,
    {{ var('quarantine_max_share') }} as max_share
from window_totals
where quarantined_rows > {{ var('quarantine_max_share') }} * (staged_rows + quarantined_rows)
