{% macro day_name(date) -%}
    {#- The English name of a date's day of the week (Monday ... Sunday), without padding. -#}
    {{ return(adapter.dispatch('day_name', 'olist_dw')(date)) }}
{%- endmacro %}


{% macro default__day_name(date) -%}
    to_char({{ date }}, 'FMDay')
{%- endmacro %}


{% macro spark__day_name(date) -%}
    date_format({{ date }}, 'EEEE')
{%- endmacro %}
