-- Every raw row of the window is either staged or set aside by a documented rule:
--   superseded: an older load of a key that a later load replaced (dedup rule: the latest load wins);
--   the window's rows are those of its orders (children and customers through their order).
-- Returns one row per entity whose counts do not add up.

{{ config(tags=['reconciliation']) }}

with

orders_in_window as (

    select
        order_id,
        customer_id
    from {{ ref('stg_olist__orders') }}
    where {{ in_watermark_window('purchased_at') }}

),

raw_counts as (

    select
        'orders' as entity,
        count(*) as raw_rows,
        count(distinct raw_orders.order_id) as distinct_keys
    from {{ source('olist', 'orders') }} as raw_orders
    inner join orders_in_window
        on raw_orders.order_id = orders_in_window.order_id

    union all

    select
        'order_items' as entity,
        count(*) as raw_rows,
        count(distinct concat_ws('|', raw_items.order_id, raw_items.order_item_id)) as distinct_keys
    from {{ source('olist', 'order_items') }} as raw_items
    inner join orders_in_window
        on raw_items.order_id = orders_in_window.order_id

    union all

    select
        'order_payments' as entity,
        count(*) as raw_rows,
        count(distinct concat_ws('|', raw_payments.order_id, raw_payments.payment_sequential)) as distinct_keys
    from {{ source('olist', 'order_payments') }} as raw_payments
    inner join orders_in_window
        on raw_payments.order_id = orders_in_window.order_id

    union all

    select
        'order_reviews' as entity,
        count(*) as raw_rows,
        count(distinct concat_ws('|', raw_reviews.review_id, raw_reviews.order_id)) as distinct_keys
    from {{ source('olist', 'order_reviews') }} as raw_reviews
    inner join orders_in_window
        on raw_reviews.order_id = orders_in_window.order_id

    union all

    select
        'customers' as entity,
        count(*) as raw_rows,
        count(distinct raw_customers.customer_id) as distinct_keys
    from {{ source('olist', 'customers') }} as raw_customers
    where raw_customers.customer_id in (select orders_in_window.customer_id from orders_in_window)

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

)

select
    raw_counts.entity,
    raw_counts.raw_rows,
    staged_counts.staged_rows,
    raw_counts.raw_rows - raw_counts.distinct_keys as superseded_rows
from raw_counts
inner join staged_counts
    on raw_counts.entity = staged_counts.entity
where raw_counts.raw_rows != staged_counts.staged_rows + (raw_counts.raw_rows - raw_counts.distinct_keys)
