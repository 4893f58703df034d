{{
    config(
        meta={'window_column': 'order_purchased_at'},
        indexes=[
            {'columns': ['review_id', 'order_id'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

-- The latest load of each review that passed the row rules (its order staged too), in its order's window.
clean_rows as (

    select * from {{ ref('base_olist__order_reviews') }}
    where
        disposition = 'clean'
        and {{ in_watermark_window('order_purchased_at') }}

),

renamed as (

    select
        review_id,
        order_id,
        batch_id,
        nullif(trim(review_comment_title), '') as review_comment_title,
        nullif(trim(review_comment_message), '') as review_comment_message,
        cast(review_score as integer) as review_score,
        cast(cast(nullif(review_creation_date, '') as timestamp) as date) as review_created_date,
        cast(nullif(review_answer_timestamp, '') as timestamp) as review_answered_at,
        order_purchased_at,
        loaded_at
    from clean_rows

)

select
    review_id,
    order_id,
    batch_id,
    review_comment_title,
    review_comment_message,
    review_score,
    review_created_date,
    review_answered_at,
    order_purchased_at,
    loaded_at
from renamed
