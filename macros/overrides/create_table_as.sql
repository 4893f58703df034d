{% macro sail__create_table_as(temporary, relation, compiled_code, language='sql') -%}
    {#- The Hive metastore behind Sail refuses the `create or replace table` that dbt-spark writes for Delta, and
        dropping a Delta table leaves its files behind (a table created again at that place would read them). So a
        table is written with `insert overwrite`, one Delta commit that readers see whole: a new one after it was
        created empty with the model's columns (`create table ... as` of no rows), an existing one in place, its
        columns checked first. Sail 0.7.2's local-cluster mode runs `insert overwrite` but fails `create table ...
        as` and `insert into` on rows of functions such as upper or md5 ("no UDF found"). Temporary views and Python
        models are dbt-spark's. -#}
    {%- if temporary or language != 'sql' -%}
        {{ return(spark__create_table_as(temporary, relation, compiled_code, language)) }}
    {%- endif -%}
    {%- set query_columns = get_columns_in_query(compiled_code) -%}
    {%- set existing = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) -%}
    {%- if existing is none and execute -%}
        {%- set shape_only = 'select * from (' ~ compiled_code ~ ') as model_rows where false' -%}
        {%- do run_query(
            spark__create_table_as(temporary, relation, shape_only, language) | replace('create or replace table', 'create table', 1)
        ) -%}
    {%- elif existing is not none -%}
        {%- set table_columns = adapter.get_columns_in_relation(existing) | map(attribute='name') | list -%}
        {%- if (table_columns | map('lower') | list) != (query_columns | map('lower') | list) -%}
            {{ exceptions.raise_compiler_error(
                relation ~ ": the model's columns changed (table: " ~ table_columns | join(', ') ~ "; model: "
                ~ query_columns | join(', ') ~ "). Drop the table and remove its files, then build it again."
            ) }}
        {%- endif -%}
    {%- endif -%}
    insert overwrite table {{ relation }}
    select {{ query_columns | join(', ') }}
    from (
        {{ compiled_code }}
    ) as model_rows
{%- endmacro %}
