{% macro sorted_distinct_list(expression, delimiter) -%}
    {#- An aggregate: a group's distinct non-null values, sorted, as one text joined by a delimiter. The delimiter
        is the text itself, not a SQL literal. -#}
    {{ return(adapter.dispatch('sorted_distinct_list', 'olist_dw')(expression, delimiter)) }}
{%- endmacro %}


{% macro default__sorted_distinct_list(expression, delimiter) -%}
    string_agg(distinct {{ expression }}, '{{ delimiter }}' order by {{ expression }})
{%- endmacro %}


{% macro spark__sorted_distinct_list(expression, delimiter) -%}
    array_join(array_sort(collect_set({{ expression }})), '{{ delimiter }}')
{%- endmacro %}
