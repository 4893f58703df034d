{% macro is_superseded(key_columns) -%}
    {#- Whether a later batch restated the row's key (not a defect: the restatement wins); a row without a usable
        key is superseded when a later batch loads its file again, the way an operator fixes one. Reads the
        `latest_batch_id` of the key and the `latest_batch_id_of_file` a base model computes. -#}
    case
        when {% for column, kind in key_columns %}{{ is_valid_text(column, kind) }}{% if not loop.last %} and {% endif %}{% endfor %}
            then latest_batch_id != _batch_id
        else latest_batch_id_of_file != _batch_id
    end
{%- endmacro %}
