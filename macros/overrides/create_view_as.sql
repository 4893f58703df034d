{% macro sail__create_view_as(relation, sql) -%}
    {#- The Hive metastore behind Sail refuses dbt-spark's `create or replace view`: the view is dropped, then
        created. A reader between the two finds no view, for a moment; the marts' published views are repointed
        the same way. -#}
    {%- if execute -%}
        {%- do adapter.drop_relation(relation.incorporate(type='view')) -%}
    {%- endif -%}
    {{ spark__create_view_as(relation, sql) | replace('create or replace view', 'create view', 1) }}
{%- endmacro %}
