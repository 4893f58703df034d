{{
    config(
        unique_key='date_day',
        indexes=[{'columns': ['date_day'], 'unique': true}],
    )
}}

with

days as (

    {{ date_days(
        start_date="cast('" ~ date_var('date_spine_start') ~ "' as date)",
        end_date="cast('" ~ date_var('date_spine_end') ~ "' as date)",
    ) }}

)

select
    cast(date_day as date) as date_day,
    {{ day_name('date_day') }} as day_name,
    {{ month_name('date_day') }} as month_name,
    cast(extract(year from date_day) as integer) as year_number,
    cast(extract(quarter from date_day) as integer) as quarter_number,
    cast(extract(month from date_day) as integer) as month_number,
    cast({{ iso_day_of_week('date_day') }} as integer) as iso_day_of_week,
    {{ iso_day_of_week('date_day') }} in (6, 7) as is_weekend,
    cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
    cast({{ dbt.date_trunc('week', 'date_day') }} as date) as week_start_date,
    current_timestamp as created_at,
    current_timestamp as updated_at,
    1 as version
from days
