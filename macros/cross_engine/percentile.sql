{% macro percentile(expression, fraction) -%}
    {#- An aggregate: the exact percentile of a group's values, interpolated between the two nearest values
        (PostgreSQL's percentile_cont; Spark's percentile, not the approximate percentile_approx). -#}
    {{ return(adapter.dispatch('percentile', 'olist_dw')(expression, fraction)) }}
{%- endmacro %}


{% macro default__percentile(expression, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expression }})
{%- endmacro %}


{% macro spark__percentile(expression, fraction) -%}
    percentile({{ expression }}, {{ fraction }})
{%- endmacro %}
