{% macro date_days(start_date, end_date) -%}
    {#- One row per day in [start_date, end_date), in a column named date_day. -#}
    {{ return(adapter.dispatch('date_days', 'olist_dw')(start_date, end_date)) }}
{%- endmacro %}


{% macro default__date_days(start_date, end_date) -%}
    {{ dbt_utils.date_spine(datepart='day', start_date=start_date, end_date=end_date) }}
{%- endmacro %}


{% macro spark__date_days(start_date, end_date) -%}
    {#- dbt_utils.date_spine goes through dbt-spark's dateadd, which gives 1970 dates on Sail. -#}
    select explode(sequence({{ start_date }}, date_sub({{ end_date }}, 1), interval 1 day)) as date_day
{%- endmacro %}
