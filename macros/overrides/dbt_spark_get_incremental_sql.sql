{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) -%}
    {#- dbt-spark's incremental materialization calls this by name for a strategy's SQL, and dbt-spark's own knows
        only the built-in strategies (dbt-labs/dbt-adapters#833). The work is done by the spark__ implementation;
        on any other engine nothing calls it, and the default fails. -#}
    {{ return(adapter.dispatch('dbt_spark_get_incremental_sql', 'olist_dw')(
        strategy, source, target, existing, unique_key, incremental_predicates
    )) }}
{%- endmacro %}


{% macro default__dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) -%}
    {{ exceptions.raise_compiler_error(
        "dbt_spark_get_incremental_sql is dbt-spark's hook; " ~ adapter.type() ~ " has no use for it"
    ) }}
{%- endmacro %}


{% macro spark__dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) -%}
    {#- A built-in strategy gets dbt-spark's own SQL; a custom one its get_incremental_<strategy>_sql macro, found the
        way dbt's default incremental materialization finds it (adapter.get_incremental_strategy_macro) and called
        with the same arguments. The destination columns are the target's, read after dbt-spark has applied
        on_schema_change. -#}
    {%- if strategy in ['append', 'merge', 'insert_overwrite', 'microbatch'] -%}
        {{ return(dbt.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates)) }}
    {%- endif -%}
    {%- set strategy_sql = adapter.get_incremental_strategy_macro(context, strategy) -%}
    {{ return(strategy_sql({
        'target_relation': target,
        'temp_relation': source,
        'unique_key': unique_key,
        'dest_columns': adapter.get_columns_in_relation(target),
        'incremental_predicates': incremental_predicates,
    })) }}
{%- endmacro %}
