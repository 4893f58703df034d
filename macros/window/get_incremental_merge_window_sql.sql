{% macro get_incremental_merge_window_sql(arg_dict) -%}
    {#- dbt calls this for models configured with incremental_strategy='merge_window'. The project's own settings
        are custom keys, so they live in the model's meta (dbt warns of custom keys in config). -#}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- if not unique_key -%}
        {{ exceptions.raise_compiler_error("merge_window needs a unique_key (a column or a list of columns)") }}
    {%- endif -%}
    {%- do assert_unique_key(arg_dict['temp_relation'], unique_key, label='the incoming window of ' ~ model.name) -%}
    {{ return(merge_window(
        target_relation=arg_dict['target_relation'],
        source_relation=arg_dict['temp_relation'],
        unique_key=unique_key,
        window_column=config.meta_get('window_column'),
        columns=arg_dict['dest_columns'] | map(attribute='name') | list,
        audit_columns=config.meta_get('audit_columns', ['created_at', 'updated_at', 'version']),
        exclude_columns=config.get('merge_exclude_columns') or [],
    )) }}
{%- endmacro %}
