{% macro postgres__refresh_materialized_view(relation) -%}
    {#- dbt-postgres refreshes with an exclusive lock; a mart with a unique index is refreshed
        CONCURRENTLY instead, so dashboards keep reading the previous contents during the refresh. -#}
    {%- set unique_indexes = config.get('indexes', []) | selectattr('unique') | list -%}
    refresh materialized view {{ 'concurrently' if unique_indexes }} {{ relation }}
{%- endmacro %}


{% macro spark__refresh_materialized_view(relation) -%}
    {#- Spark and Sail have no materialized views: the marts are tables there, rebuilt whole by each build, so nothing
        refreshes one; reaching this is a configuration error, said plainly. -#}
    {{ exceptions.raise_compiler_error(
        "refresh_materialized_view(" ~ relation ~ "): this engine has no materialized views; build the marts as"
        ~ " tables (materialized='table') instead"
    ) }}
{%- endmacro %}
