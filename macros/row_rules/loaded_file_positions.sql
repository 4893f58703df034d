{% macro loaded_file_positions() -%}
    {#- One row per file in raw (loaded, not rolled back, not empty): the raw id of its first row, which
        source_line counts from, and the batch that last loaded a file of its name, which supersedes the rows of
        earlier loads that have no usable key. Join it on (_batch_id, _source_file) as `loaded_files`. -#}
    select
        batch_id,
        file_name,
        first_raw_id,
        first_value(batch_id) over (partition by file_name order by loaded_at desc) as latest_batch_id_of_file
    from {{ source('runner', 'loaded_files') }}
    where rolled_back_at is null and row_count > 0
{%- endmacro %}
