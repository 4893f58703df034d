{% macro sql_type(postgres_type) -%}
    {#- The engine's name for a PostgreSQL data type the project casts to, where the engine spells it otherwise or
        has none: on Spark, `text` and `uuid` are strings, `double precision` is `double`, and an unconstrained
        `numeric` (exact, any scale) is a wide decimal, not Spark's `decimal(10, 0)`, which would round.
        Any other type (integer, date, timestamp, numeric(12, 2) ...) is written as given. -#}
    {{ return(adapter.dispatch('sql_type', 'olist_dw')(postgres_type)) }}
{%- endmacro %}


{% macro default__sql_type(postgres_type) -%}
    {{ return(postgres_type) }}
{%- endmacro %}


{% macro spark__sql_type(postgres_type) -%}
    {%- set spark_types = {
        'text': 'string',
        'uuid': 'string',
        'double precision': 'double',
        'numeric': 'decimal(38, 10)',
    } -%}
    {{ return(spark_types.get(postgres_type, postgres_type)) }}
{%- endmacro %}
