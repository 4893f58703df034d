{% macro fault_point(name) -%}
    {#- A named place where a test can stop a dbt run for real: with OLIST_DW_PAUSE_AT=<name> the statement
        sleeps there (inside the model's transaction) for OLIST_DW_PAUSE_SECONDS, long enough for the test to
        kill the run or to change rows under it. Unset, it renders nothing. -#}
    {{ return(adapter.dispatch('fault_point', 'olist_dw')(name)) }}
{%- endmacro %}


{% macro default__fault_point(name) -%}
    {%- if env_var('OLIST_DW_PAUSE_AT', '') == name -%}
        select pg_sleep({{ env_var('OLIST_DW_PAUSE_SECONDS', '120') | float }}) /* olist_dw pause: {{ name }} */;
    {%- endif -%}
{%- endmacro %}


{% macro spark__fault_point(name) -%}
    {#- Spark SQL has no sleep, and a Spark statement commits alone (there is no open transaction to hold): a pause
        asked for here fails the run at compile time rather than being silently skipped. -#}
    {%- if env_var('OLIST_DW_PAUSE_AT', '') == name -%}
        {{ exceptions.raise_compiler_error(
            "fault_point '" ~ name ~ "': OLIST_DW_PAUSE_AT pauses need PostgreSQL (pg_sleep inside the model's transaction)"
        ) }}
    {%- endif -%}
{%- endmacro %}
