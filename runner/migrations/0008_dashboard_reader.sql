-- The dashboard's reader: a role that can read the marts and the runner's ledger and nothing else. The dashboard's
-- sessions log in as the runner's own user and switch to it (`-c role=...`), so a page, whatever it is made to ask,
-- cannot read raw, staging, core or quarantine, nor write anywhere.

-- Roles belong to the server, not to a database: the role may exist already, made by the migration of another
-- database on the same server (maybe at this very moment: the migration lock is per database). NOLOGIN: nobody
-- logs in as it; a login role of its own for a dashboard can be made a member of it.
do $$
begin
    if not exists (select from pg_roles where rolname = 'olist_dw_dashboard') then
        begin
            create role olist_dw_dashboard nologin;
        exception
            when duplicate_object or unique_violation then
                null;
            when insufficient_privilege then
                raise exception 'the dashboard''s read-only role olist_dw_dashboard does not exist and % may not create'
                    ' roles', current_user
                    using hint = 'Have a superuser run "create role olist_dw_dashboard nologin" once on this server,'
                        ' then migrate again.';
        end;
    end if;
    -- The runner's user must be allowed to switch to it (a superuser always is; PostgreSQL 16 tells membership
    -- from the right to SET ROLE, which a role's creator does not get by itself).
    if not pg_has_role(
        current_user,
        'olist_dw_dashboard',
        case when current_setting('server_version_num')::integer >= 160000 then 'SET' else 'MEMBER' end
    ) then
        begin
            execute format('grant olist_dw_dashboard to %I', current_user);
        exception
            when insufficient_privilege then
                raise exception '% may not switch to the dashboard''s read-only role olist_dw_dashboard', current_user
                    using hint = format(
                        'Have a superuser run "grant olist_dw_dashboard to %I", then migrate again.', current_user
                    );
        end;
    end if;
end
$$;

-- The ledger, for the page's freshness line, including the tables later migrations add.
grant usage on schema metadata to olist_dw_dashboard;
grant select on all tables in schema metadata to olist_dw_dashboard;
alter default privileges in schema metadata grant select on tables to olist_dw_dashboard;

-- The marts of a warehouse built before this migration. Each new mart version is granted as it is published
-- (runner/marts.py): a version is built in a schema of its own, which default privileges of `mart` would not reach.
do $$
begin
    if to_regnamespace('mart') is not null then
        grant usage on schema mart to olist_dw_dashboard;
        grant select on all tables in schema mart to olist_dw_dashboard;
    end if;
end
$$;
