{% macro source_line(multiline_columns=[]) -%}
    {#- The line of its file where a raw row's record starts, as an editor counts it: the header is line 1 and
        line breaks inside earlier quoted fields count. One COPY wrote a file's rows, so _raw_id is file order. -#}
    {%- set file_order = 'partition by _batch_id, _source_file order by _raw_id' -%}
    1 + row_number() over ({{ file_order }})
    {%- if multiline_columns %}
    + coalesce(sum(
        {%- for column in multiline_columns %}
        length(coalesce({{ column }}, '')) - length(replace(coalesce({{ column }}, ''), chr(10), ''))
        {%- if not loop.last %} +{% endif %}
        {%- endfor %}
    ) over ({{ file_order }} rows between unbounded preceding and 1 preceding), 0)
    {%- endif %}
{%- endmacro %}
