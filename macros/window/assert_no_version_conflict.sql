{% macro assert_no_version_conflict(target_relation, keys, version, seen, scope) -%}
    {#- The check that ends an optimistically locked write: a row in scope that this transaction did not write
        and whose version is not the one read (or that was not there when read) was changed by someone else
        meanwhile. Fail with SQLSTATE 40001 (serialization_failure), naming the first such key: the transaction
        rolls back, and whoever retries reads the rows again. -#}
    do $conflict$
    declare
        conflict record;
    begin
        select
            concat_ws(', ', {% for key in keys %}target.{{ key }}::text{{ ', ' if not loop.last }}{% endfor %}) as key_values,
            seen.{{ version }} as read_version,
            target.{{ version }} as current_version
        into conflict
        from {{ target_relation }} as target
        left join {{ seen }} as seen
            on {% for key in keys %}seen.{{ key }} = target.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        where target.xmin <> pg_current_xact_id()::xid
            and target.{{ version }} is distinct from seen.{{ version }}
            and ({{ scope }})
        limit 1;
        if found then
            raise exception using
                errcode = 'serialization_failure',
                message = format(
                    'version conflict on {{ target_relation }} ({{ keys | join(", ") }})=(%s): changed by someone else since it was read (version %s read, version %s now)',
                    conflict.key_values, coalesce(conflict.read_version::text, 'none'), conflict.current_version
                );
        end if;
    end
    $conflict$;
{%- endmacro %}
