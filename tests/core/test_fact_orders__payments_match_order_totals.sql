-- Per purchase month, what customers paid matches what the billable orders cost (items + freight) within 2 %.
-- Orders differ one by one (vouchers, instalment interest), so the check is on monthly totals, over the orders
-- that have both items and payments: the export also has orders with no items and orders with no payment.
-- Returns the months outside the tolerance.

{{ config(tags=['reconciliation']) }}

with

orders as (

    select
        items_value,
        freight_value,
        payment_total,
        purchase_date
    from {{ ref('fact_orders') }}
    where is_billable and item_count > 0 and payment_count > 0

),

monthly as (

    select
        {{ dbt.date_trunc('month', 'purchase_date') }} as purchase_month,
        sum(items_value + freight_value) as order_total,
        sum(payment_total) as payment_total
    from orders
    group by 1

)

select
    purchase_month,
    order_total,
    payment_total
from monthly
where abs(payment_total - order_total) > 0.02 * order_total
