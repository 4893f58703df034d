{% macro month_name(date) -%}
    {#- The English name of a date's month (January ... December), without padding. -#}
    {{ return(adapter.dispatch('month_name', 'olist_dw')(date)) }}
{%- endmacro %}


{% macro default__month_name(date) -%}
    to_char({{ date }}, 'FMMonth')
{%- endmacro %}


{% macro spark__month_name(date) -%}
    date_format({{ date }}, 'MMMM')
{%- endmacro %}
