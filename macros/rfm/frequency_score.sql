{% macro frequency_score(order_count) -%}
    {#- Frequency on fixed thresholds rather than quintiles: most Olist buyers order once, and quintiles of a
        column that is 1 for nearly everyone would split identical buyers at random. -#}
    case
        when {{ order_count }} >= 4 then 5
        when {{ order_count }} = 3 then 4
        when {{ order_count }} = 2 then 3
        else 1
    end
{%- endmacro %}
