{% macro get_incremental_replace_window_sql(arg_dict) -%}
    {#- dbt calls this for models configured with incremental_strategy='replace_window'. The project's own settings
        are custom keys, so they live in the model's meta (dbt warns of custom keys in config). The key is the
        model's `unique_key`, else the columns of its unique index: the rows a key had in another window go. -#}
    {%- set unique_indexes = config.get('indexes', []) | selectattr('unique') | map(attribute='columns') | list -%}
    {{ return(replace_window(
        target_relation=arg_dict['target_relation'],
        source_relation=arg_dict['temp_relation'],
        window_column=config.meta_require('window_column'),
        columns=arg_dict['dest_columns'] | map(attribute='quoted') | list,
        include_unplaced=config.meta_get('replace_unplaced_rows', false),
        unique_key=arg_dict['unique_key'] or (unique_indexes | first),
    )) }}
{%- endmacro %}
