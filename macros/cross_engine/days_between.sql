{% macro days_between(start_date, end_date) -%}
    {#- The whole days from one date to another (negative when the end comes first): PostgreSQL's date - date. -#}
    {{ return(adapter.dispatch('days_between', 'olist_dw')(start_date, end_date)) }}
{%- endmacro %}


{% macro default__days_between(start_date, end_date) -%}
    {{ end_date }} - {{ start_date }}
{%- endmacro %}


{% macro spark__days_between(start_date, end_date) -%}
    datediff({{ end_date }}, {{ start_date }})
{%- endmacro %}
