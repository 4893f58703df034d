{{
    config(
        alias='order_reviews',
        indexes=[
            {'columns': ['raw_id'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

-- The window's quarantined rows, and those no window can claim (their order's purchase time is unknown).
quarantined_rows as (

    select * from {{ ref('base_olist__order_reviews') }}
    where
        disposition = 'quarantined'
        and ({{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null)

)

select
    raw_id,
    batch_id,
    source_file,
    source_line,
    quarantine_rule,
    quarantine_reason,
    raw_values,
    order_purchased_at,
    loaded_at
from quarantined_rows
