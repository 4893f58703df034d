{{ config(alias='all_rows', materialized='view') }}

{%- set entities = ['orders', 'order_items', 'order_payments', 'order_reviews', 'customers'] %}

{% for entity in entities -%}
select
    '{{ entity }}' as entity,
    raw_id,
    batch_id,
    source_file,
    source_line,
    quarantine_rule,
    quarantine_reason,
    raw_values,
    order_purchased_at,
    loaded_at
from {{ ref('quarantine_olist__' ~ entity) }}
{% if not loop.last %}
union all

{% endif -%}
{%- endfor %}
