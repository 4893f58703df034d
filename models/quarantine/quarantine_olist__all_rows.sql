{{ config(alias='all_rows', materialized='view') }}

{%- set entities = ['orders', 'order_items', 'order_payments', 'order_reviews', 'customers'] %}

{% for entity in entities %}
    select
        '{{ entity }}' as entity,
        {{ quarantine_columns() | join(', ') }}
    from {{ ref('quarantine_olist__' ~ entity) }}
    {% if not loop.last %}union all{% endif %}
{% endfor %}
