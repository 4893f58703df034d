{{
    config(
        unique_key=['review_id', 'order_id'],
        meta={'window_column': 'order_purchased_at'},
        indexes=[
            {'columns': ['review_id', 'order_id'], 'unique': true},
            {'columns': ['order_id']},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

order_reviews as (

    select
        review_id,
        order_id,
        review_score,
        review_comment_title,
        review_comment_message,
        review_created_date,
        review_answered_at,
        order_purchased_at
    from {{ ref('stg_olist__order_reviews') }}
    where {{ in_watermark_window('order_purchased_at') }}

),

orders as (

    select
        order_id,
        delivered_to_customer_at
    from {{ ref('stg_olist__orders') }}
    where {{ in_watermark_window('purchased_at') }}

)

select
    order_reviews.review_id,
    order_reviews.order_id,
    order_reviews.review_comment_title,
    order_reviews.review_comment_message,
    order_reviews.review_score,
    order_reviews.review_comment_message is not null as has_comment,
    -- The export holds reviews requested before the order arrived; they are kept and flagged.
    coalesce(order_reviews.review_created_date < cast(orders.delivered_to_customer_at as date), false)
        as is_created_before_delivery,
    order_reviews.review_created_date,
    order_reviews.review_answered_at,
    order_reviews.order_purchased_at,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from order_reviews
inner join orders
    on order_reviews.order_id = orders.order_id
