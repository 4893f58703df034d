{{ config(indexes=[{'columns': ['seller_id'], 'unique': true}]) }}

with

order_items as (

    select
        order_id,
        seller_id,
        price,
        is_shipped_late,
        delivered_to_carrier_at
    from {{ ref('fact_order_items') }}
    where is_billable

),

sellers as (

    select
        seller_id,
        seller_state
    from {{ ref('dim_seller') }}

),

reviews as (

    select
        order_id,
        review_score
    from {{ ref('fact_reviews') }}

),

sales as (

    select
        seller_id,
        count(distinct order_id) as order_count,
        count(*) as item_count,
        sum(price) as revenue,
        -- Over the items handed to a carrier: late when after the item's shipping limit.
        avg(case when is_shipped_late then 1 else 0 end) filter (where delivered_to_carrier_at is not null)
            as late_shipment_rate
    from order_items
    group by seller_id

),

-- A review is about an order; it counts once for each seller with items in that order.
seller_reviews as (

    select
        order_items_per_seller.seller_id,
        avg(reviews.review_score) as mean_review_score,
        count(*) as review_count
    from (
        select distinct
            order_id,
            seller_id
        from order_items
    ) as order_items_per_seller
    inner join reviews
        on order_items_per_seller.order_id = reviews.order_id
    group by order_items_per_seller.seller_id

),

-- Every seller: those in the sellers file (with or without sales) and those only known from items.
all_sellers as (

    select seller_id from sellers
    union
    select seller_id from sales

)

select
    all_sellers.seller_id,
    coalesce(sellers.seller_state, 'unknown') as seller_state,
    coalesce(sales.order_count, 0) as order_count,
    coalesce(sales.item_count, 0) as item_count,
    coalesce(seller_reviews.review_count, 0) as review_count,
    coalesce(sales.revenue, 0) as revenue,
    round(seller_reviews.mean_review_score, 2) as mean_review_score,
    round(sales.late_shipment_rate, 4) as late_shipment_rate,
    sellers.seller_id is not null as is_in_sellers_file
from all_sellers
left join sellers
    on all_sellers.seller_id = sellers.seller_id
left join sales
    on all_sellers.seller_id = sales.seller_id
left join seller_reviews
    on all_sellers.seller_id = seller_reviews.seller_id
