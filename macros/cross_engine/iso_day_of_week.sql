{% macro iso_day_of_week(date) -%}
    {#- A date's ISO day of the week: 1 for Monday to 7 for Sunday. -#}
    {{ return(adapter.dispatch('iso_day_of_week', 'olist_dw')(date)) }}
{%- endmacro %}


{% macro default__iso_day_of_week(date) -%}
    extract(isodow from {{ date }})
{%- endmacro %}


{% macro spark__iso_day_of_week(date) -%}
    {#- dayofweek() counts from 1 for Sunday. Not weekday(), which Sail 0.7 gets wrong for Sundays (-1). -#}
    ((dayofweek({{ date }}) + 5) % 7 + 1)
{%- endmacro %}
