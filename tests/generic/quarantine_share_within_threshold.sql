{% test quarantine_share_within_threshold(model, window_column, quarantine) %}
{#- The window stops here when more than var('quarantine_max_share') of an entity's rows in it were quarantined:
    too much of it is bad to call it done. A test on the staging model, whose quarantine model it reads and
    depends on, so a failure skips everything downstream of staging (core, snapshots) and nothing is published.
    Returns the window's figures when it is over the threshold. -#}

with

staged as (

    select count(*) as staged_rows
    from {{ model }}
    where {{ in_watermark_window(window_column) }}

),

quarantined as (

    select count(*) as quarantined_rows
    from {{ quarantine }}
    where {{ in_watermark_window('order_purchased_at') }}

)

select
    staged.staged_rows,
    quarantined.quarantined_rows,
    {{ number_var('quarantine_max_share', 0, 1) }} as max_share
from staged
cross join quarantined
where quarantined.quarantined_rows > {{ number_var('quarantine_max_share', 0, 1) }} * (staged.staged_rows + quarantined.quarantined_rows)

{% endtest %}
