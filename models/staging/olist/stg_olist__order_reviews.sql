{{
    config(
        incremental_strategy='replace_window',
        window_column='order_purchased_at',
        indexes=[
            {'columns': ['review_id', 'order_id'], 'unique': true},
            {'columns': ['order_purchased_at']},
        ],
    )
}}

with

source as (

    select * from {{ source('olist', 'order_reviews') }}

),

-- A review belongs to the window of its order; a review whose order is not in raw belongs to no window.
orders_in_window as (

    select
        order_id,
        purchased_at
    from {{ ref('stg_olist__orders') }}
    where {{ in_watermark_window('purchased_at') }}

),

renamed as (

    select
        review_id,
        order_id,
        nullif(trim(review_comment_title), '') as review_comment_title,
        nullif(trim(review_comment_message), '') as review_comment_message,
        cast(review_score as integer) as review_score,
        cast(cast(nullif(review_creation_date, '') as timestamp) as date) as review_created_date,
        cast(nullif(review_answer_timestamp, '') as timestamp) as review_answered_at,
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _raw_id as raw_id
    from source

),

-- The export repeats a review_id across orders (one review answering several orders of a customer):
-- the grain is (review_id, order_id), and a pair loaded more than once keeps its latest load.
deduplicated as (

    {{ dbt_utils.deduplicate(
        relation='renamed',
        partition_by='review_id, order_id',
        order_by='loaded_at desc, raw_id desc',
    ) }}

)

select
    deduplicated.review_id,
    deduplicated.order_id,
    deduplicated.batch_id,
    deduplicated.review_comment_title,
    deduplicated.review_comment_message,
    deduplicated.review_score,
    deduplicated.review_created_date,
    deduplicated.review_answered_at,
    orders_in_window.purchased_at as order_purchased_at,
    deduplicated.loaded_at
from deduplicated
inner join orders_in_window
    on deduplicated.order_id = orders_in_window.order_id
