{% macro raw_purchase_time(column) -%}
    {#- A raw purchase time as a timestamp, null when it is not one: the runner's function metadata.purchase_time,
        which raw.orders is indexed on, so a window's orders are found without reading the others.
        is_valid_text(column, 'timestamp') calls it too. -#}
    metadata.purchase_time({{ column }})
{%- endmacro %}
