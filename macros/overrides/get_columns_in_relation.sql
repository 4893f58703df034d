{% macro sail__get_columns_in_relation(relation) -%}
    {#- dbt-spark's spark__get_columns_in_relation, which dbt-sail calls, returns DESCRIBE's raw rows, not columns:
        a macro reading their names reads empty ones. dbt's snapshot does, for the closing row of a vanished key
        (hard_deletes='new_record'), and so wrote that row with every column null. The adapter's own method parses
        the rows into columns. -#}
    {{ return(adapter.get_columns_in_relation(relation)) }}
{%- endmacro %}
