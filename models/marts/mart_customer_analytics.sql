{{ config(indexes=[{'columns': ['customer_unique_id'], 'unique': true}]) }}

-- The RFM logic lives in the macro customer_rfm_scores: dim_customer.customer_segment uses it too.
with

scored as (

    {{ customer_rfm_scores(ref('fact_orders'), ref('dim_customer')) }}

)

select
    customer_unique_id,
    segment,
    order_count,
    total_spent,
    recency_days,
    recency_score,
    frequency_score,
    monetary_score,
    first_order_at,
    last_order_at
from scored
