{% macro spark__deduplicate(relation, partition_by, order_by) -%}
    {#- dbt_utils.deduplicate for Spark and Sail (found first through the project's dispatch config): dbt_utils'
        default natural join selects `data.*`, which Sail can not resolve, and Sail has neither QUALIFY nor
        `* except`. The first row of each partition is kept, with its rank in an extra column, dedup_rank (always
        1), which the models' explicit column lists leave out. -#}
    select *
    from (
        select
            ranked.*,
            row_number() over (partition by {{ partition_by }} order by {{ order_by }}) as dedup_rank
        from {{ relation }} as ranked
    ) as numbered
    where dedup_rank = 1
{%- endmacro %}
