{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Layers live in fixed schemas (raw, staging, core, snapshots, mart), not in <target>_<layer>:
        the runner, the marts' readers and the rollback commands address them by these names. -#}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
