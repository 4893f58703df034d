{% macro zip_code_prefix(column) -%}
    {#- Brazilian CEP prefixes are five digits; spreadsheets in the export's history dropped leading zeros
        ("1310" for "01310"). Restore them; anything that is not 1-5 digits becomes null. -#}
    case
        when {{ matches_pattern('trim(' ~ column ~ ')', '^\\d{1,5}$') }} then lpad(trim({{ column }}), 5, '0')
    end
{%- endmacro %}
