{% macro merge_window(target_relation, source_relation, unique_key, window_column, columns, audit_columns, exclude_columns=[]) -%}
    {#- Make the target's rows of the window equal to the source's, touching only rows that really change:
        - a row of the window that vanished from the source is deleted;
        - a changed row is updated, keeps created_at, takes the run's updated_at and bumps version by one;
        - an unchanged row is left as it is (no new updated_at, no version bump), so re-runs are no-ops;
        - a new row is inserted with version 1.
        With window_column none the window is the whole table (reference data, merged whole each run).
        exclude_columns (dbt's merge_exclude_columns) are written when a row is inserted and never compared or
        updated afterwards: another writer owns them (dim_customer's customer_segment).
        A row someone else changed meanwhile is never overwritten: the merge fails instead, and is run again. -#}
    {{ return(adapter.dispatch('merge_window', 'olist_dw')(
        target_relation, source_relation, unique_key, window_column, columns, audit_columns, exclude_columns
    )) }}
{%- endmacro %}


{% macro postgres__merge_window(target_relation, source_relation, unique_key, window_column, columns, audit_columns, exclude_columns=[]) -%}
    {#- Optimistic locking: the versions of the rows it is about to write are read first; a row is deleted or
        updated only if it still has the version read (PostgreSQL re-checks the condition on the newest row
        version when a concurrent writer got there first), and any row changed by someone else since it was
        read fails the merge with a version conflict naming its key, so nothing is overwritten.
        PostgreSQL 15 has no MERGE ... WHEN NOT MATCHED BY SOURCE (that came in 17), hence the DELETE. -#}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set created_at, updated_at, version = audit_columns -%}
    {%- set compared = columns | reject('in', keys + [created_at, updated_at, version] + exclude_columns) | list -%}
    {%- set seen = target_relation.identifier ~ '__seen_versions' -%}
    {%- set key_list = keys | join(', ') -%}
    {%- set in_window = in_watermark_window('target.' ~ window_column) if window_column else 'true' -%}
    {%- set target_keys_in_source -%}
        ({% for key in keys %}target.{{ key }}{{ ', ' if not loop.last }}{% endfor %}) in (select {{ key_list }} from {{ source_relation }})
    {%- endset -%}
    {%- set joined_on_keys -%}
        {% for key in keys %}seen.{{ key }} = target.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    {%- endset -%}
    -- Autovacuum never analyzes temporary tables: without statistics the planner takes the incoming rows for a
    -- handful and joins them by nested loops, quadratic in the window's size (minutes for a 100,000-row merge).
    analyze {{ source_relation }};

    create temporary table {{ seen }} on commit drop as
    select {{ key_list }}, {{ version }}
    from {{ target_relation }} as target
    where {{ in_window }} or {{ target_keys_in_source }};

    analyze {{ seen }};

    {{ fault_point('merge_window.' ~ target_relation.identifier) }}

    {#- Nor has autovacuum analyzed a table dbt has just built, until it gets to it: the version check at the end
        joins all of a table merged whole, and planned without statistics that join is a nested loop under
        LIMIT 1, quadratic in the table (over ten minutes at a million customers). So a table without statistics
        is analyzed before it is written. (After the fault point: a test finds a paused merge by its text, which
        pg_stat_activity keeps the first 1 kB of.) #}
    do $analyze$
    begin
        if not exists (
            select from pg_stats
            where schemaname = '{{ target_relation.schema }}' and tablename = '{{ target_relation.identifier }}'
        ) then
            analyze {{ target_relation }};
        end if;
    end
    $analyze$;

    delete from {{ target_relation }} as target
    using {{ seen }} as seen
    where {{ joined_on_keys }}
        and target.{{ version }} = seen.{{ version }}
        and {{ in_window }}
        and not exists (
            select 1
            from {{ source_relation }} as source
            where {% for key in keys %}source.{{ key }} = target.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        );

    merge into {{ target_relation }} as target
    using (
        select
            source.*,
            seen.{{ version }} as seen_version
        from {{ source_relation }} as source
        left join {{ seen }} as seen
            on {% for key in keys %}seen.{{ key }} = source.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    ) as source
        on {% for key in keys %}target.{{ key }} = source.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    when matched and target.{{ version }} = source.seen_version and (
        {%- for column in compared %} target.{{ column }}{{ ',' if not loop.last }}{% endfor %}
    ) is distinct from (
        {%- for column in compared %} source.{{ column }}{{ ',' if not loop.last }}{% endfor %}
    ) then update set
        {%- for column in compared %}
        {{ column }} = source.{{ column }},
        {%- endfor %}
        {{ updated_at }} = source.{{ updated_at }},
        {{ version }} = source.seen_version + 1
    when not matched then insert ({{ columns | join(', ') }})
    values ({% for column in columns %}source.{{ column }}{{ ', ' if not loop.last }}{% endfor %});

    {{ assert_no_version_conflict(target_relation, keys, version, seen, in_window ~ ' or ' ~ target_keys_in_source) }}
{%- endmacro %}


{% macro spark__merge_window(target_relation, source_relation, unique_key, window_column, columns, audit_columns, exclude_columns=[]) -%}
    {#- One MERGE, so one Delta commit: a changed row is updated (its version bumped from the one the MERGE read),
        a new row inserted, and a row of the window no new row matches deleted (WHEN NOT MATCHED BY SOURCE).
        Optimistic locking is Delta's own: a commit by someone else to the files this MERGE read since it started
        fails it with a concurrent-modification error instead of being overwritten, and the run is retried. -#}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set created_at, updated_at, version = audit_columns -%}
    {%- set compared = columns | reject('in', keys + [created_at, updated_at, version] + exclude_columns) | list -%}
    {%- set in_window = in_watermark_window('target.' ~ window_column) if window_column else none -%}
    {{ fault_point('merge_window.' ~ target_relation.identifier) }}
    merge into {{ target_relation }} as target
    using {{ source_relation }} as source
        on {% for key in keys %}target.{{ key }} = source.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    {%- if compared %}
    when matched and not (
        {%- for column in compared %}
        target.{{ column }} <=> source.{{ column }}{{ ' and' if not loop.last }}
        {%- endfor %}
    ) then update set
        {%- for column in compared %}
        {{ column }} = source.{{ column }},
        {%- endfor %}
        {{ updated_at }} = source.{{ updated_at }},
        {{ version }} = target.{{ version }} + 1
    {%- endif %}
    when not matched then insert ({{ columns | join(', ') }})
    values ({% for column in columns %}source.{{ column }}{{ ', ' if not loop.last }}{% endfor %})
    when not matched by source{{ ' and (' ~ in_window ~ ')' if in_window }} then delete
{%- endmacro %}
