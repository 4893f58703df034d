{% macro column_checks(column, kind, required=true) -%}
    {#- The row rules every raw column of a kind gets, for quarantine_checks: present (when required) and
        convertible to its type. A key (`id`, `position`) fails as missing_key / malformed_key, a timestamp as
        unparseable_timestamp, a number as unparseable_number. -#}
    {%- set rules = {
        'id': ('missing_key', 'malformed_key', 'a 32-digit hex id'),
        'position': ('missing_key', 'malformed_key', 'a position from 1'),
        'timestamp': ('unparseable_timestamp', 'unparseable_timestamp', 'a timestamp'),
        'integer': ('unparseable_number', 'unparseable_number', 'a whole number'),
        'amount': ('unparseable_number', 'unparseable_number', 'an amount like 12.34'),
        'coordinate': ('unparseable_number', 'unparseable_number', 'a decimal coordinate'),
    } -%}
    {%- set missing_rule, malformed_rule, expected = rules[kind] -%}
    {%- set checks = [] -%}
    {%- if required -%}
        {%- do checks.append({
            'rule': missing_rule,
            'fails': 'coalesce(' ~ column ~ ", '') = ''",
            'reason': "'" ~ column ~ " is empty'",
        }) -%}
    {%- endif -%}
    {%- do checks.append({
        'rule': malformed_rule,
        'fails': column ~ " != '' and not " ~ is_valid_text(column, kind),
        'reason': format_message(column ~ ' %L is not ' ~ expected, [column]),
    }) -%}
    {{ return(checks) }}
{%- endmacro %}
