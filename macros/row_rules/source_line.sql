{% macro source_line(line_breaks_before=none) -%}
    {#- The line of its file where a raw row's record starts, as an editor counts it: the header is line 1, and
        the line breaks inside earlier records' quoted fields count (`line_breaks_before`, for files whose fields
        span lines). One COPY wrote the file's rows with consecutive raw ids, so a row's place in its file is its
        raw id's distance from the first's: needs `source` (the raw row) and `loaded_files` (loaded_file_positions). -#}
    source._raw_id - loaded_files.first_raw_id + 2
    {%- if line_breaks_before %} + {{ line_breaks_before }}{% endif %}
{%- endmacro %}
