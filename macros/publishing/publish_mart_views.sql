{% macro publish_mart_views(results) -%}
    {#- on-run-end: where the marts are tables (Spark, Sail), point the views of schema `mart` at the marts this
        invocation built, once every node it ran passed. On PostgreSQL the runner publishes (runner/marts.py). -#}
    {{ return(adapter.dispatch('publish_mart_views', 'olist_dw')(results)) }}
{%- endmacro %}


{% macro default__publish_mart_views(results) -%}
    {#- PostgreSQL: `mart` holds the marts' materialized views themselves, swapped in by schema renames. -#}
{%- endmacro %}


{% macro spark__publish_mart_views(results) -%}
    {#- No materialized view, no view replaced in place, no schema rename: each mart is a table of the schema the
        build wrote (`mart__v<N>` from the runner, `mart__dbt` by hand), and `mart.<name>` a view on it, dropped and
        created again (see runner/sail_marts.py). Nothing moves when any node of the invocation failed. -#}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set built = [] -%}
    {%- for result in results -%}
        {%- if result.status in ['error', 'fail'] -%}
            {{ return('') }}
        {%- endif -%}
        {%- if result.node.resource_type == 'model' and result.node.original_file_path.startswith('models/marts/')
            and result.node.schema != 'mart' -%}
            {%- do built.append(result.node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for node in built -%}
        {%- do point_mart_views(node.schema, [node.alias]) -%}
    {%- endfor -%}
    {%- if built -%}
        {{ log('published ' ~ built | length ~ ' marts: views of mart on ' ~ built[0].schema, info=true) }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}


{% macro point_mart_views(schema, names) -%}
    {#- Re-create each view `mart.<name>` on the table `<schema>.<name>`, its columns listed: dropped, then
        created (Sail's catalog replaces no view in place). The hook above calls it; so does
        `runner publish --rollback --target sail`, through `dbt run-operation`, to go back to a kept version. -#}
    {%- for name in names -%}
        {%- set table = api.Relation.create(schema=schema, identifier=name, type='table') -%}
        {%- set view = api.Relation.create(schema='mart', identifier=name, type='view') -%}
        {%- set columns = adapter.get_columns_in_relation(table) -%}
        {%- if not columns -%}
            {{ exceptions.raise_compiler_error('point_mart_views: ' ~ table ~ ' has no columns (is it there?)') }}
        {%- endif -%}
        {%- do adapter.create_schema(view) -%}
        {%- set published = adapter.get_relation(database=none, schema='mart', identifier=name) -%}
        {%- if published is not none -%}
            {%- do adapter.drop_relation(published) -%}
        {%- endif -%}
        {%- call statement('point_' ~ name) -%}
            create view {{ view }} as
            select
                {%- for column in columns %}
                {{ adapter.quote(column.name) }}{{ ',' if not loop.last }}
                {%- endfor %}
            from {{ table }}
        {%- endcall -%}
    {%- endfor -%}
{%- endmacro %}
