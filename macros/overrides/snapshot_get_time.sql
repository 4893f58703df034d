{% macro postgres__snapshot_get_time() -%}
    {#- dbt-postgres stamps snapshots with a timestamp without time zone (the session's local time); core's
        audit columns are timestamptz. Stamping with timestamptz too keeps dbt_valid_from / dbt_valid_to comparable
        with updated_at across sessions in any time zone, so "as of" reads are exact. -#}
    {{ current_timestamp() }}
{%- endmacro %}
