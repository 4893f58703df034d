{% macro most_frequent(expression) -%}
    {#- An aggregate: the value of a group that occurs most often, ties going to the lowest (nulls ignored). -#}
    {{ return(adapter.dispatch('most_frequent', 'olist_dw')(expression)) }}
{%- endmacro %}


{% macro default__most_frequent(expression) -%}
    mode() within group (order by {{ expression }})
{%- endmacro %}


{% macro spark__most_frequent(expression) -%}
    {#- mode(x, true) returns the lowest of tied values (Spark 4.0); mode(x) alone picks one at random. -#}
    mode({{ expression }}, true)
{%- endmacro %}
