{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
    {#- dbt-spark's incremental materialization calls this by name, and dbt-spark's own accepts only the built-in
        strategies (dbt-labs/dbt-adapters#833), so it would refuse replace_window and merge_window. The work is
        done by the spark__ implementation; on any other engine nothing calls it, and the default fails. -#}
    {{ return(adapter.dispatch('dbt_spark_validate_get_incremental_strategy', 'olist_dw')(raw_strategy, file_format)) }}
{%- endmacro %}


{% macro default__dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
    {{ exceptions.raise_compiler_error(
        "dbt_spark_validate_get_incremental_strategy is dbt-spark's hook; " ~ adapter.type() ~ " has no use for it"
    ) }}
{%- endmacro %}


{% macro spark__dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
    {#- A built-in strategy goes to dbt-spark's own check. Any other is a custom one: its get_incremental_<strategy>_sql
        macro must exist (adapter.get_incremental_strategy_macro fails naming it otherwise), and the table must be
        Delta, since the project's strategies write with MERGE ... WHEN NOT MATCHED BY SOURCE. -#}
    {%- if raw_strategy in ['append', 'merge', 'insert_overwrite', 'microbatch'] -%}
        {{ return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) }}
    {%- endif -%}
    {%- do adapter.get_incremental_strategy_macro(context, raw_strategy) -%}
    {%- if file_format != 'delta' -%}
        {{ exceptions.raise_compiler_error(
            "incremental strategy '" ~ raw_strategy ~ "' writes with MERGE ... WHEN NOT MATCHED BY SOURCE, which needs"
            ~ " file_format 'delta', not '" ~ file_format ~ "'"
        ) }}
    {%- endif -%}
    {{ return(raw_strategy) }}
{%- endmacro %}
