{% macro quarantined_rows(base_model) -%}
    {#- A quarantine model's whole body: the quarantined rows of one base model in the window, and those no window
        can claim (their order's purchase time is unknown). Every entity keeps the same columns. -#}
with

quarantined_rows as (

    select * from {{ base_model }}
    where
        disposition = 'quarantined'
        and ({{ in_watermark_window('order_purchased_at') }} or order_purchased_at is null)

)

select
    {{ quarantine_columns() | join(',\n    ') }}
from quarantined_rows
{%- endmacro %}


{% macro quarantine_columns() -%}
    {#- The columns every quarantine table has, in order (quarantined_rows writes them, all_rows reads them). -#}
    {{ return([
        'raw_id', 'batch_id', 'source_file', 'source_line', 'quarantine_rule', 'quarantine_reason', 'raw_values',
        'order_purchased_at', 'loaded_at',
    ]) }}
{%- endmacro %}
