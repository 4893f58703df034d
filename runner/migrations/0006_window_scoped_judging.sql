-- A day's run reads a day of raw rows, not the history (the dbt project's base_olist__* models judge only the
-- rows a window needs). Two things make that possible.

-- 1. raw.orders is indexed on the purchase time (the runner's raw tables carry the index), so the function must be
-- immutable. It is: the pattern admits ISO dates only, which read the same under every DateStyle and time zone.
-- A SQL body without an exception block also costs far less per row than the plpgsql one it replaces, which
-- matters now that every loaded order row computes it. The rule is unchanged: the dbt macro is_valid_text's.
create or replace function metadata.purchase_time(raw_value text) returns timestamp
language sql immutable parallel safe
as $$
    select case
        when raw_value ~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,6})?)?$'
            then case
                when cast(substr(raw_value, 9, 2) as integer) <= extract(day from
                    make_date(cast(substr(raw_value, 1, 4) as integer), cast(substr(raw_value, 6, 2) as integer), 1)
                    + interval '1 month - 1 day'
                ) then cast(raw_value as timestamp)
            end
    end
$$;

-- 2. The raw id of a file's first row. One COPY writes a file's rows with consecutive raw ids (the loader locks the
-- raw table against other loaders), so a row's line in its file follows from its raw id without reading the
-- rows before it. Files loaded before this migration get the smallest raw id of their rows.
alter table metadata.loaded_files add column first_raw_id bigint;

do $$
declare
    loaded_entity text;
begin
    for loaded_entity in select distinct entity from metadata.loaded_files loop
        if to_regclass(format('raw.%I', loaded_entity)) is not null then
            execute format(
                'update metadata.loaded_files as files set first_raw_id = firsts.first_raw_id'
                ' from (select _batch_id, _source_file, min(_raw_id) as first_raw_id from raw.%I group by 1, 2)'
                ' as firsts'
                ' where files.batch_id = firsts._batch_id and files.file_name = firsts._source_file',
                loaded_entity
            );
        end if;
    end loop;
end
$$;
