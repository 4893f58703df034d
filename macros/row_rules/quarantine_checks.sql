{% macro quarantine_checks(checks) -%}
    {#- Two columns from an ordered list of row rules, each {rule, fails, reason}: the first rule a row fails
        (`quarantine_rule`, null for a clean row) and why, in words with the offending value
        (`quarantine_reason`). Rules are tried in order, so a later rule may assume the earlier ones passed
        (a range check may cast a value the parse check has already accepted). -#}
    case
        {%- for check in checks %}
        when {{ check.fails }} then '{{ check.rule }}'
        {%- endfor %}
    end as quarantine_rule,
    case
        {%- for check in checks %}
        when {{ check.fails }} then {{ check.reason }}
        {%- endfor %}
    end as quarantine_reason
{%- endmacro %}
