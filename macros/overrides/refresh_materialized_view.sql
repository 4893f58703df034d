{% macro postgres__refresh_materialized_view(relation) -%}
    {#- dbt-postgres refreshes with an exclusive lock; a mart with a unique index is refreshed
        CONCURRENTLY instead, so dashboards keep reading the previous contents during the refresh. -#}
    {%- set unique_indexes = config.get('indexes', []) | selectattr('unique') | list -%}
    refresh materialized view {{ 'concurrently' if unique_indexes }} {{ relation }}
{%- endmacro %}
