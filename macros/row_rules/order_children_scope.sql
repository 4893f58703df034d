{% macro order_children_scope(raw_relation, alias, columns) -%}
    {#- The loads of an order's children (items, payments, reviews) one window needs judged: those of the orders
        placed in the window or in none (all loads of a key share its order_id), through the raw table's index on
        order_id; and the loads whose order_id no order load has, which no window can place. That anti-join reads
        every order id of both tables: the one read here that grows with the history. Reads the model's `orders`
        CTE (the latest load of each order, with its purchase time). -#}
    select
        {{- raw_columns(alias, columns) }}
    from {{ raw_relation }} as {{ alias }}
    where
        {{ alias }}.order_id in (
            select orders.order_id from orders
            where {{ in_watermark_window('orders.order_purchased_at') }} or orders.order_purchased_at is null
        )

    union all

    select
        {{- raw_columns(alias, columns) }}
    from {{ raw_relation }} as {{ alias }}
    where not exists (
        select 1 from {{ source('olist', 'orders') }} as all_orders
        where all_orders.order_id = {{ alias }}.order_id
    )
{%- endmacro %}
