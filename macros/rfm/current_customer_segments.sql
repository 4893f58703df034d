{% macro current_customer_segments(dim_customer, fact_orders) -%}
    {#- Each customer row's current RFM segment, 'unscored' for a person with no order to score: what
        assign_customer_segments writes, on every engine. -#}
    select
        customers.customer_id,
        coalesce(rfm.segment, 'unscored') as customer_segment
    from {{ dim_customer }} as customers
    left join ({{ customer_rfm_scores(fact_orders, dim_customer) }}) as rfm
        on customers.customer_unique_id = rfm.customer_unique_id
{%- endmacro %}
