{{ config(indexes=[{'columns': ['purchase_month'], 'unique': true}]) }}

with

orders as (

    select
        order_id,
        customer_id,
        order_status,
        items_value,
        is_billable,
        purchase_date
    from {{ ref('fact_orders') }}

),

customers as (

    select
        customer_id,
        customer_unique_id
    from {{ ref('dim_customer') }}

),

reviews as (

    select
        order_id,
        review_score
    from {{ ref('fact_reviews') }}

),

orders_by_month as (

    select
        orders.order_id,
        orders.order_status,
        orders.items_value,
        orders.is_billable,
        customers.customer_unique_id,
        cast({{ dbt.date_trunc('month', 'orders.purchase_date') }} as date) as purchase_month
    from orders
    left join customers
        on orders.customer_id = customers.customer_id

),

first_months as (

    select
        customer_unique_id,
        min(purchase_month) as first_month
    from orders_by_month
    where customer_unique_id is not null
    group by customer_unique_id

),

order_figures as (

    select
        orders_by_month.purchase_month,
        count(*) as order_count,
        count(*) filter (where orders_by_month.is_billable) as billable_order_count,
        count(*) filter (where orders_by_month.order_status = 'canceled') as canceled_order_count,
        coalesce(sum(orders_by_month.items_value) filter (where orders_by_month.is_billable), 0)
            as gross_merchandise_value,
        count(distinct orders_by_month.customer_unique_id) filter (
            where first_months.first_month = orders_by_month.purchase_month
        ) as new_customer_count,
        count(distinct orders_by_month.customer_unique_id) filter (
            where first_months.first_month < orders_by_month.purchase_month
        ) as returning_customer_count
    from orders_by_month
    left join first_months
        on orders_by_month.customer_unique_id = first_months.customer_unique_id
    group by orders_by_month.purchase_month

),

review_figures as (

    select
        orders_by_month.purchase_month,
        count(*) as review_count,
        sum(reviews.review_score) as review_score_sum
    from reviews
    inner join orders_by_month
        on reviews.order_id = orders_by_month.order_id
    group by orders_by_month.purchase_month

)

select
    order_figures.purchase_month,
    order_figures.order_count,
    order_figures.billable_order_count,
    order_figures.canceled_order_count,
    order_figures.new_customer_count,
    order_figures.returning_customer_count,
    order_figures.gross_merchandise_value,
    round(order_figures.gross_merchandise_value / nullif(order_figures.billable_order_count, 0), 2)
        as average_order_value,
    round(1.0 * review_figures.review_score_sum / review_figures.review_count, 2) as mean_review_score,
    round(1.0 * order_figures.canceled_order_count / order_figures.order_count, 4) as cancellation_rate,
    coalesce(review_figures.review_count, 0) as review_count,
    coalesce(review_figures.review_score_sum, 0) as review_score_sum
from order_figures
left join review_figures
    on order_figures.purchase_month = review_figures.purchase_month
