{% macro verdict_columns() -%}
    {#- A base model's verdict on each row, from its `is_superseded`, `quarantine_rule` and `quarantine_reason`
        (quarantine_checks): superseded wins, as a later load's restatement is no defect. -#}
    case
        when is_superseded then 'superseded'
        when quarantine_rule is not null then 'quarantined'
        else 'clean'
    end as disposition,
    case when not is_superseded then quarantine_rule end as quarantine_rule,
    case when not is_superseded then quarantine_reason end as quarantine_reason
{%- endmacro %}
