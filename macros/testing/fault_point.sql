{% macro fault_point(name) -%}
    {#- A named place where a test can stop a dbt run for real: with OLIST_DW_PAUSE_AT=<name> the statement
        sleeps there (inside the model's transaction) for OLIST_DW_PAUSE_SECONDS, long enough for the test to
        kill the run or to change rows under it. Unset, it renders nothing. -#}
    {%- if env_var('OLIST_DW_PAUSE_AT', '') == name -%}
        select pg_sleep({{ env_var('OLIST_DW_PAUSE_SECONDS', '120') | float }}) /* olist_dw pause: {{ name }} */;
    {%- endif -%}
{%- endmacro %}
