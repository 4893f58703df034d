-- A raw purchase time as the runner reads it to plan windows: the timestamp when the text is one in the export's
-- format, else null. The same rule as the dbt project's row rules (macro is_valid_text), so that a row the
-- quarantine holds never makes the runner fail or plan a window for it.
create or replace function metadata.purchase_time(raw_value text) returns timestamp
language plpgsql stable
as $$
begin
    if raw_value !~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,6})?)?$' then
        return null;
    end if;
    return cast(raw_value as timestamp);
exception
    when datetime_field_overflow or invalid_datetime_format then
        return null;  -- the 30th of February
end;
$$;
